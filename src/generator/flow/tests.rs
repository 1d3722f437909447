//! Exactness tests of every flow layer and of composed flows, in float64.

use tch::{Kind, Tensor};

use super::*;
use crate::generator::{DeviceChoice, Generator, Precision};
use crate::rng::stream;

/// Moves every parameter away from its (identity) initialisation, so the tests exercise
/// non-trivial maps.
fn perturb(flow: &Flow, scale: f64) {
    tch::no_grad(|| {
        for v in flow.var_store().trainable_variables() {
            let mut v = v;
            let noise = v.randn_like() * scale;
            let _ = v.f_add_(&noise).unwrap();
        }
    });
}

fn configs(dim: usize) -> Vec<(&'static str, FlowConfig)> {
    let f64cfg = |c: FlowConfig| c.with_precision(Precision::Float64);
    let mut perm: Vec<usize> = (0..dim).collect();
    perm.reverse();
    vec![
        (
            "affine",
            f64cfg(FlowConfig {
                dim,
                layers: vec![LayerSpec::AffineCoupling {
                    transformed: vec![0],
                    hidden: vec![8],
                    scale_bound: 2.0,
                }],
                base: BaseSpec::StandardNormal,
                activation: Activation::Tanh,
                precision: Precision::Float64,
            }),
        ),
        (
            "spline",
            f64cfg(FlowConfig {
                dim,
                layers: vec![LayerSpec::SplineCoupling {
                    transformed: vec![1, 2],
                    hidden: vec![8],
                    bins: 6,
                    tail_bound: 3.0,
                }],
                base: BaseSpec::StandardNormal,
                activation: Activation::Tanh,
                precision: Precision::Float64,
            }),
        ),
        (
            "actnorm",
            f64cfg(FlowConfig {
                dim,
                layers: vec![LayerSpec::ActNorm],
                base: BaseSpec::StandardNormal,
                activation: Activation::Tanh,
                precision: Precision::Float64,
            }),
        ),
        (
            "permutation",
            f64cfg(FlowConfig {
                dim,
                layers: vec![LayerSpec::Permutation { order: perm }],
                base: BaseSpec::StandardNormal,
                activation: Activation::Tanh,
                precision: Precision::Float64,
            }),
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
        let (x, ld_fwd) = f.forward_t(&z);
        let (z_back, ld_inv) = f.inverse_t(&x);
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
        let (x, ld) = f.forward_t(&z);
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
