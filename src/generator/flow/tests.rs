//! Exactness tests of every flow layer and of composed flows, in float64.

use tch::{Kind, Tensor};

use super::*;
use crate::generator::{DeviceChoice, Generator, Precision};
use crate::rng::stream;

/// Moves every parameter away from its (identity) initialisation, so the tests exercise
/// non-trivial maps (also the training tests').
pub(crate) fn perturb(flow: &Flow, scale: f64) {
    tch::no_grad(|| {
        for v in flow.var_store().trainable_variables() {
            let mut v = v;
            let noise = v.randn_like() * scale;
            let _ = v.f_add_(&noise).unwrap();
        }
    });
}

/// A float64 flow with a single layer.
fn one_layer(dim: usize, layer: LayerSpec) -> FlowConfig {
    FlowConfig {
        dim,
        layers: vec![layer],
        base: BaseSpec::StandardNormal,
        activation: Activation::Tanh,
        precision: Precision::Float64,
        internal: None,
    }
}

fn configs(dim: usize) -> Vec<(&'static str, FlowConfig)> {
    let f64cfg = |c: FlowConfig| c.with_precision(Precision::Float64);
    let mut perm: Vec<usize> = (0..dim).collect();
    perm.reverse();
    vec![
        (
            "affine",
            one_layer(
                dim,
                LayerSpec::AffineCoupling {
                    transformed: vec![0],
                    hidden: vec![8],
                    scale_bound: 2.0,
                },
            ),
        ),
        (
            "spline",
            one_layer(
                dim,
                LayerSpec::SplineCoupling {
                    transformed: vec![1, 2],
                    hidden: vec![8],
                    bins: 6,
                    tail_bound: 3.0,
                },
            ),
        ),
        ("actnorm", one_layer(dim, LayerSpec::ActNorm)),
        (
            "permutation",
            one_layer(dim, LayerSpec::Permutation { order: perm }),
        ),
        (
            "uniform_cdf",
            one_layer(
                dim,
                LayerSpec::UniformCdf {
                    transformed: vec![0, 2],
                    bound: 2.5,
                },
            ),
        ),
        ("real_nvp", f64cfg(FlowConfig::real_nvp(dim, 4, &[16, 16]))),
        (
            "neural_spline",
            f64cfg(FlowConfig::neural_spline(dim, 4, &[16, 16], 8, 2.5)),
        ),
    ]
}

fn flow(config: FlowConfig) -> Flow {
    tch::manual_seed(3);
    let f = Flow::new(config, DeviceChoice::Cpu).unwrap();
    perturb(&f, 0.1);
    f
}

/// Latent points with σ = 1.5, so that a good fraction falls outside the splines' interval and
/// both the spline and the identity tails are exercised.
///
/// (With perturbed weights and inputs out at 8σ, a composed spline flow can amplify rounding
/// to ~1e-9 through its conditioners: the round-trip bound is for inputs a flow meets.)
fn latent(n: i64, dim: usize) -> Tensor {
    tch::manual_seed(11);
    Tensor::randn([n, dim as i64], (Kind::Double, tch::Device::Cpu)) * 1.5
}

#[test]
fn inverse_undoes_forward_and_log_dets_cancel() {
    let _torch = crate::generator::torch_lock();
    for (name, config) in configs(4) {
        let f = flow(config);
        let z = latent(256, 4);
        let (x, ld_fwd) = f.forward_t(&z).unwrap();
        let (z_back, ld_inv) = f.inverse_t(&x).unwrap();
        let err = (&z_back - &z).abs().max().double_value(&[]);
        assert!(err < 1e-10, "{name}: |f⁻¹(f(z)) − z| = {err}");
        // The log-dets are sums of a few dozen logarithms of slopes that each carry the
        // round-trip error divided by the local slope: 1e-9 is that budget, and still a
        // thousand times below the 1e-6 that reweighting needs.
        let ld_err = (&ld_fwd + &ld_inv).abs().max().double_value(&[]);
        assert!(ld_err < 1e-9, "{name}: log-dets do not cancel ({ld_err})");
    }
}

#[test]
fn log_det_equals_autograd_jacobian() {
    let _torch = crate::generator::torch_lock();
    let dim = 4;
    for (name, config) in configs(dim) {
        let f = flow(config);
        let n = 6;
        let z = latent(n, dim).set_requires_grad(true);
        let (x, ld) = f.forward_t(&z).unwrap();
        // Row i of every sample's Jacobian: ∂x_i/∂z, from one backward pass of Σ_batch x_i
        // (samples do not interact).
        let mut rows = Vec::new();
        for i in 0..dim as i64 {
            let g = Tensor::run_backward(&[x.select(1, i).sum(Kind::Double)], &[&z], true, false);
            rows.push(g[0].shallow_clone());
        }
        let jac = Tensor::stack(&rows, 1); // [n, dim(out), dim(in)]
        let (_, brute) = Tensor::linalg_slogdet(&jac);
        let err = (&brute - &ld).abs().max().double_value(&[]);
        assert!(
            err < 1e-9,
            "{name}: log|det J| {err} off the autograd value"
        );
    }
}

#[test]
fn sample_and_log_prob_agree() {
    let _torch = crate::generator::torch_lock();
    for (name, config) in configs(3) {
        let f = flow(config);
        let s = f.sample(500, &mut stream(5, 0)).unwrap();
        let lq = f.log_prob(&s.x).unwrap();
        for (a, b) in s.log_q.iter().zip(&lq) {
            assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()), "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn a_new_flow_is_its_base_distribution() {
    let _torch = crate::generator::torch_lock();
    tch::manual_seed(0);
    let f = Flow::new(
        FlowConfig::neural_spline(3, 2, &[8], 4, 3.0).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let x = [0.3, -1.0, 4.0, 0.0, 0.0, 0.0];
    let lq = f.log_prob(&x).unwrap();
    let base = |v: &[f64]| {
        -0.5 * v.iter().map(|a| a * a).sum::<f64>() - 1.5 * (2.0 * std::f64::consts::PI).ln()
    };
    assert!((lq[0] - base(&x[..3])).abs() < 1e-12);
    assert!((lq[1] - base(&x[3..])).abs() < 1e-12);
}

#[test]
fn spline_is_identity_outside_the_tail_bound() {
    let _torch = crate::generator::torch_lock();
    let cfg = FlowConfig {
        dim: 2,
        layers: vec![LayerSpec::SplineCoupling {
            transformed: vec![1],
            hidden: vec![8],
            bins: 5,
            tail_bound: 1.0,
        }],
        base: BaseSpec::StandardNormal,
        activation: Activation::Tanh,
        precision: Precision::Float64,
        internal: None,
    };
    let f = flow(cfg);
    let (x, ld) = f.forward(&[0.2, 1.5, 0.2, -7.0, 0.2, 0.5]).unwrap();
    assert_eq!(x[1], 1.5);
    assert_eq!(x[3], -7.0);
    assert_eq!(ld[0], 0.0);
    assert_ne!(
        x[5], 0.5,
        "inside the interval the perturbed spline is not the identity"
    );
}

#[test]
fn same_seed_gives_the_same_samples() {
    let _torch = crate::generator::torch_lock();
    let f = flow(FlowConfig::real_nvp(3, 2, &[8]));
    let a = f.sample(50, &mut stream(9, 2)).unwrap();
    let b = f.sample(50, &mut stream(9, 2)).unwrap();
    let c = f.sample(50, &mut stream(9, 3)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.x, c.x);
}

#[test]
fn float32_log_q_is_close_to_float64() {
    let _torch = crate::generator::torch_lock();
    let cfg = FlowConfig::neural_spline(4, 3, &[16], 6, 3.0);
    let f64flow = flow(cfg.clone().with_precision(Precision::Float64));
    let mut f32flow = Flow::new(cfg, DeviceChoice::Cpu).unwrap();
    // Same weights in single precision.
    tch::no_grad(|| {
        let src = f64flow.var_store().variables();
        for (name, mut v) in f32flow.var_store_mut().variables() {
            v.copy_(&src[&name]);
        }
    });
    let x: Vec<f64> = (0..400)
        .map(|i| ((i * 7919 % 1000) as f64 / 250.0) - 2.0)
        .collect();
    let a = f64flow.log_prob(&x).unwrap();
    let b = f32flow.log_prob(&x).unwrap();
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-4 * (1.0 + p.abs()), "{p} vs {q}");
    }
}

#[test]
fn bad_input_is_an_error() {
    let _torch = crate::generator::torch_lock();
    let f = flow(FlowConfig::real_nvp(2, 2, &[4]));
    assert!(matches!(
        f.log_prob(&[1.0, 2.0, 3.0]),
        Err(Error::Dimension { .. })
    ));
    assert!(matches!(
        f.log_prob(&[1.0, f64::NAN]),
        Err(Error::NonFinite { index: 1, .. })
    ));
    let bad = FlowConfig {
        dim: 3,
        layers: vec![LayerSpec::AffineCoupling {
            transformed: vec![0, 1, 2],
            hidden: vec![4],
            scale_bound: 2.0,
        }],
        base: BaseSpec::StandardNormal,
        activation: Activation::Tanh,
        precision: Precision::Float64,
        internal: None,
    };
    let err = Flow::new(bad, DeviceChoice::Cpu).unwrap_err();
    assert!(err.to_string().contains("layers[0]"), "{err}");
}

#[test]
fn mean_free_flows_live_on_the_centre_of_mass_free_subspace() {
    let _torch = crate::generator::torch_lock();
    let (n, d) = (4, 3);
    let cfg = FlowConfig::neural_spline((n - 1) * d, 4, &[16], 6, 3.0)
        .with_precision(Precision::Float64)
        .mean_free(n, d)
        .unwrap();
    assert_eq!(cfg.dim, 12);
    assert_eq!(cfg.latent_dim(), 9);
    let f = flow(cfg);
    let s = f.sample(300, &mut stream(1, 0)).unwrap();
    for c in s.x.chunks_exact(n * d) {
        for a in 0..d {
            let com: f64 = (0..n).map(|i| c[i * d + a]).sum::<f64>() / n as f64;
            assert!(com.abs() < 1e-12, "centre of mass {com}");
        }
    }
    let lq = f.log_prob(&s.x).unwrap();
    for (a, b) in s.log_q.iter().zip(&lq) {
        assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()), "{a} vs {b}");
    }
    // Translating a configuration does not change its density on the subspace.
    let shifted: Vec<f64> = s.x[..n * d]
        .iter()
        .enumerate()
        .map(|(i, v)| v + [0.7, -2.0, 3.1][i % d])
        .collect();
    let l2 = f.log_prob(&shifted).unwrap()[0];
    assert!((l2 - lq[0]).abs() < 1e-9 * (1.0 + l2.abs()));
}

#[test]
fn an_untrained_mean_free_flow_is_the_mean_free_gaussian() {
    let _torch = crate::generator::torch_lock();
    let (n, d) = (3, 2);
    tch::manual_seed(0);
    let f = Flow::new(
        FlowConfig::real_nvp((n - 1) * d, 2, &[8])
            .with_precision(Precision::Float64)
            .mean_free(n, d)
            .unwrap(),
        DeviceChoice::Cpu,
    )
    .unwrap();
    // A centre-of-mass-free configuration: log q = −½‖x‖² − ((n−1)d/2) ln 2π.
    let x = [1.0, 0.5, -0.3, 0.2, -0.7, -0.7];
    let expected =
        -0.5 * x.iter().map(|v| v * v).sum::<f64>() - 2.0 * (2.0 * std::f64::consts::PI).ln();
    assert!((f.log_prob(&x).unwrap()[0] - expected).abs() < 1e-12);
    assert!(FlowConfig::real_nvp(5, 2, &[8]).mean_free(3, 2).is_err());
}

/// A branched eight-atom molecule (bonds as in a small alcohol) with frames made from random
/// internal coordinates, for internal-coordinate flows.
pub(crate) fn branched_molecule() -> (Vec<(usize, usize)>, Vec<f64>) {
    use rand_distr::{Distribution, Normal};
    let bonds = vec![(0, 1), (1, 2), (1, 3), (1, 4), (4, 5), (4, 6), (6, 7)];
    let zmatrix = crate::molecule::ZMatrix::from_bonds(8, &bonds).unwrap();
    let mut rng = stream(2, 0);
    let bond = Normal::new(0.12, 0.01).unwrap();
    let angle = Normal::new(1.9, 0.08).unwrap();
    let torsion = Normal::new(1.0, 1.2).unwrap();
    let frames = (0..500)
        .flat_map(|_| {
            let mut q = vec![0.0; 24];
            q[3] = 1.2;
            for (i, slot) in q[6..].iter_mut().enumerate() {
                *slot = match (i + 1) % 3 {
                    1 => bond.sample(&mut rng),
                    2 => angle.sample(&mut rng),
                    _ => torsion.sample(&mut rng),
                };
            }
            q[8] = angle.sample(&mut rng);
            zmatrix.to_cartesian(&q).unwrap()
        })
        .collect();
    (bonds, frames)
}

fn internal_flow(frames: &[f64], bonds: &[(usize, usize)]) -> Flow {
    let internal = InternalCoordinates::fit(8, bonds, frames, 4.0).unwrap();
    flow(FlowConfig::internal_spline(internal, 4, &[16], 6).with_precision(Precision::Float64))
}

#[test]
fn internal_coordinate_flows_are_consistent_and_place_like_keeps_the_frame() {
    let _torch = crate::generator::torch_lock();
    let (bonds, frames) = branched_molecule();
    let f = internal_flow(&frames, &bonds);
    assert_eq!(f.config().latent_dim(), 18);
    assert!(f.keeps_external_dofs());
    let mut rng = stream(4, 0);
    let s = f.sample(64, &mut rng).unwrap();
    let lq = f.log_prob(&s.x).unwrap();
    for (a, b) in lq.iter().zip(&s.log_q) {
        assert!((a - b).abs() < 1e-8 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // log q ignores position and orientation: the same molecule moved and turned.
    let zmatrix = crate::molecule::ZMatrix::from_bonds(8, &bonds).unwrap();
    let reference = &frames[..24];
    let mut moved = s.configuration(0).to_vec();
    f.place_like(&mut moved, reference).unwrap();
    let (q_moved, q_draw, q_ref) = (
        zmatrix.to_internal(&moved).unwrap(),
        zmatrix.to_internal(s.configuration(0)).unwrap(),
        zmatrix.to_internal(reference).unwrap(),
    );
    for k in 0..24 {
        let expected = if k < 6 { q_ref[k] } else { q_draw[k] };
        assert!((q_moved[k] - expected).abs() < 1e-9, "coordinate {k}");
    }
    let lq_moved = f.log_prob(&moved).unwrap()[0];
    assert!((lq_moved - s.log_q[0]).abs() < 1e-8 * (1.0 + lq_moved.abs()));
    // Latent round trip through the Cartesian end.
    let (z, ld_inv) = f.inverse(&moved).unwrap();
    let (x_back, ld_fwd) = f.forward(&z).unwrap();
    let q_back = zmatrix.to_internal(&x_back).unwrap();
    for k in 6..24 {
        let d = (q_back[k] - q_draw[k]).abs();
        let d = d.min((d - 2.0 * std::f64::consts::PI).abs());
        assert!(d < 1e-9, "internal coordinate {k}: {d}");
    }
    assert!((ld_inv[0] + ld_fwd[0]).abs() < 1e-8);
}

#[test]
fn internal_coordinate_density_matches_a_brute_force_change_of_variables() {
    // log q(x) = log p_U(u) + log|du/dq_int| − log J_int: check the first two terms against a
    // finite-difference Jacobian of x ↦ u on the fibre, where the Cartesian end is replaced by
    // internal coordinates directly.
    let _torch = crate::generator::torch_lock();
    let (bonds, frames) = branched_molecule();
    let f = internal_flow(&frames, &bonds);
    let internal = f.config().internal.clone().unwrap();
    let zmatrix = internal.zmatrix().unwrap();
    let x = &frames[24..48];
    let q = zmatrix.to_internal(x).unwrap();
    let log_j_int = zmatrix.log_jacobian_internal(&q).unwrap();
    let (u, ld) = internal.to_layer_space(&zmatrix, x).unwrap();
    // Finite differences of u with respect to q_int, one coordinate at a time.
    let h = 1e-6;
    let mut log_du = 0.0;
    for k in 0..18 {
        let mut qp = q.clone();
        qp[6 + k] += h;
        let mut qm = q.clone();
        qm[6 + k] -= h;
        let up = internal
            .to_layer_space(&zmatrix, &zmatrix.to_cartesian(&qp).unwrap())
            .unwrap()
            .0;
        let um = internal
            .to_layer_space(&zmatrix, &zmatrix.to_cartesian(&qm).unwrap())
            .unwrap()
            .0;
        // The normalisation is diagonal: only u_k moves.
        for (j, (a, b)) in up.iter().zip(&um).enumerate() {
            if j != k {
                assert!((a - b).abs() < 1e-7, "u_{j} moved with q_{k}");
            }
        }
        log_du += ((up[k] - um[k]) / (2.0 * h)).abs().ln();
    }
    assert!(
        (ld[0] - (log_du - log_j_int)).abs() < 1e-6,
        "{} vs {}",
        ld[0],
        log_du - log_j_int
    );
    assert_eq!(u.len(), 18);
}

#[test]
fn internal_coordinate_flows_refuse_layers_that_leave_the_torsion_interval() {
    let (bonds, frames) = branched_molecule();
    let internal = InternalCoordinates::fit(8, &bonds, &frames, 4.0).unwrap();
    let mut config = FlowConfig::internal_spline(internal.clone(), 2, &[8], 4);
    config.layers.push(LayerSpec::ActNorm);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("layers[3]"), "{err}");
    let mut config = FlowConfig::internal_spline(internal.clone(), 2, &[8], 4);
    config.layers.remove(0);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("uniform_cdf"), "{err}");
    // A recorded layout that the bonds no longer produce.
    let mut moved = internal;
    moved.placements.swap(0, 1);
    let err = FlowConfig::internal_spline(moved, 2, &[8], 4)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("places atoms differently"), "{err}");
}

#[test]
fn the_libtorch_zmatrix_map_equals_the_f64_reference() {
    let _torch = crate::generator::torch_lock();
    let (bonds, frames) = branched_molecule();
    let internal = InternalCoordinates::fit(8, &bonds, &frames, 4.0).unwrap();
    let zmatrix = internal.zmatrix().unwrap();
    let (u, _) = internal
        .to_layer_space(&zmatrix, &frames[..24 * 50])
        .unwrap();
    let (x_ref, ld_ref) = internal.to_cartesian(&zmatrix, &u).unwrap();
    let u_t = Tensor::from_slice(&u).reshape([50, 18]);
    let (x_t, ld_t) = internal.to_cartesian_t(&zmatrix, &u_t);
    let x_t = Vec::<f64>::try_from(&x_t.flatten(0, -1)).unwrap();
    let ld_t = Vec::<f64>::try_from(&ld_t).unwrap();
    for (a, b) in x_t.iter().zip(&x_ref) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    for (a, b) in ld_t.iter().zip(&ld_ref) {
        assert!((a - b).abs() < 1e-10, "{a} vs {b}");
    }
}

/// Flows the hand-written backward pass covers: the single layers and RealNVP of
/// [`configs`], and mixed stacks with each activation, a non-contiguous split (gathers
/// instead of views) and a mean-free base.
fn taped_configs() -> Vec<(String, FlowConfig)> {
    let mut out: Vec<(String, FlowConfig)> = configs(4)
        .into_iter()
        .map(|(name, c)| (name.to_string(), c))
        .collect();
    for activation in [Activation::LeakyRelu, Activation::Tanh, Activation::Silu] {
        let affine = |transformed: Vec<usize>| LayerSpec::AffineCoupling {
            transformed,
            hidden: vec![8, 8],
            scale_bound: 1.5,
        };
        let layers = vec![
            affine(vec![0, 2, 5]),
            LayerSpec::Permutation {
                order: vec![3, 0, 5, 1, 4, 2],
            },
            affine(vec![3, 4, 5]),
            LayerSpec::ActNorm,
            affine(vec![0, 1]),
        ];
        let config = FlowConfig {
            dim: 6,
            layers,
            base: BaseSpec::StandardNormal,
            activation,
            precision: Precision::Float64,
            internal: None,
        };
        out.push((format!("mixed {activation:?}"), config.clone()));
        out.push((
            format!("mixed {activation:?}, float32"),
            config.clone().with_precision(Precision::Float32),
        ));
        out.push((
            format!("mixed {activation:?}, mean-free"),
            config.mean_free(4, 2).unwrap(),
        ));
    }
    out
}

#[test]
fn taped_backward_equals_autograd() {
    let _torch = crate::generator::torch_lock();
    let mut covered = 0;
    for (name, config) in taped_configs() {
        let f = flow(config);
        if !f.has_taped_backward() {
            assert!(f
                .forward_taped(&latent(2, f.config().latent_dim()))
                .is_err());
            continue;
        }
        covered += 1;
        let rows = 64;
        let z = latent(rows, f.config().latent_dim()).to_kind(f.kind());
        tch::manual_seed(5);
        let grad_x = Tensor::randn([rows, f.dim() as i64], (f.kind(), tch::Device::Cpu));
        let logdet_weight = -0.37;
        // L = Σ ⟨x_i, G_i⟩ + w Σ log|det J_f(z_i)|, differentiated by autograd ...
        let (x, logdet) = f.forward_t(&z).unwrap();
        let loss = (&x * &grad_x).sum(Kind::Double) + logdet.sum(Kind::Double) * logdet_weight;
        let params = f.var_store().trainable_variables();
        let by_autograd = if params.is_empty() {
            Vec::new() // (a permutation: libtorch refuses a backward pass without inputs)
        } else {
            Tensor::run_backward(&[loss], &params, false, false)
        };
        // ... and by hand.
        let (x_taped, logdet_taped, tape) = f.forward_taped(&z).unwrap();
        // The same code with and without autograd recording: equal, within a bound.
        let forward_tolerance = if f.kind() == Kind::Float { 1e-5 } else { 1e-12 };
        for (what, a, b) in [("x", &x_taped, &x), ("log-det", &logdet_taped, &logdet)] {
            let err = (a - b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]);
            assert!(
                err < forward_tolerance * (1.0 + scale),
                "{name}: {what} differs by {err}"
            );
        }
        let mut by_hand = f.backward_taped(tape, &grad_x, logdet_weight).unwrap();
        let mut largest: f64 = 0.0;
        for (p, expected) in params.iter().zip(&by_autograd) {
            let got = by_hand
                .take(p.data_ptr() as usize)
                .unwrap_or_else(|| panic!("{name}: a parameter got no gradient"));
            let scale = expected.abs().max().double_value(&[]);
            largest = largest.max(scale);
            let err = (&got - expected).abs().max().double_value(&[]);
            // float64: rounding only; float32: ~1e-7 per operation, summed over the batch's
            // 64 rows and a few dozen operators in either order.
            let tolerance = if got.kind() == Kind::Float {
                1e-4
            } else {
                1e-10
            };
            assert!(
                err < tolerance * (1.0 + scale),
                "{name}: gradient differs by {err} (size {scale})"
            );
        }
        assert!(by_hand.is_empty(), "{name}: gradients for unknown tensors");
        assert!(
            params.is_empty() || largest > 1e-2,
            "{name}: the check needs non-trivial gradients"
        );
    }
    assert_eq!(
        covered, 13,
        "affine, actnorm, permutation, real_nvp and 9 mixed flows"
    );
}

/// With `split_bonds_angles`, the couplings cycle through four disjoint sets (two of torsions,
/// two of bonds and angles) that together cover every internal coordinate, and the flow is
/// still consistent (`log_prob` of its own draws equals their `log q`).
#[test]
fn split_bond_angle_sets_partition_the_internal_coordinates() {
    let _torch = crate::generator::torch_lock();
    let (bonds, frames) = branched_molecule();
    let internal = InternalCoordinates::fit(8, &bonds, &frames, 4.0).unwrap();
    let torsions = internal.torsions();
    let config = FlowConfig::internal_spline_with(internal, 4, &[16], 6, true)
        .with_precision(Precision::Float64);
    let sets: Vec<Vec<usize>> = config
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerSpec::SplineCoupling { transformed, .. } => Some(transformed.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 4);
    let mut all: Vec<usize> = sets.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..18).collect::<Vec<_>>(), "{sets:?}");
    assert!(sets[..2].iter().flatten().all(|i| torsions.contains(i)));
    assert!(sets[2..].iter().flatten().all(|i| !torsions.contains(i)));
    // Root (r_ab, r_bc, θ_abc) and the first placed atom's (r, θ) are in different halves.
    assert!(sets[2].contains(&0) && sets[3].contains(&3) && sets[3].contains(&4));
    let f = flow(config);
    let s = f.sample(64, &mut stream(6, 0)).unwrap();
    let lq = f.log_prob(&s.x).unwrap();
    for (a, b) in lq.iter().zip(&s.log_q) {
        assert!((a - b).abs() < 1e-8 * (1.0 + a.abs()), "{a} vs {b}");
    }
}
