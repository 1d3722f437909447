//! Exactness of every move of the many-chain sampler, against targets with exact answers.
//!
//! Every check is a z-test whose standard error comes from the measured ESS: the observable
//! is averaged over all chains and its error bar is `sqrt(var · τ / N)`, with τ the
//! integrated autocorrelation time (Sokal's window) of the recorded series. The bound is 4
//! standard errors per check (a false alarm has probability ≈ 6·10⁻⁵ per check).
//!
//! The learned moves run on models that are not identities (an untrained flow or VAE here is
//! exactly 𝒩(0, I) with log-det 0, or r(z | x) = 𝒩(0, I) for every x, and tests through them
//! cannot see a bug that confuses x with x′): a spline flow and VAEs trained on data
//! unrelated to the target, or on the double well's wells in equal shares;
//! [`assert_non_trivial`] checks that their log-determinants vary and that the encoder
//! depends on x and the decoder on z.
//!
//! Power, checked by planting each bug once in `src/` (2026-12-03, on the models above),
//! then reverting; the first failing check and its z:
//!
//! | planted bug | test | first failing check |
//! |---|---|---|
//! | VAE ratio with x and x′ swapped (`vae_log_hastings(proposed, current)`) | `vae_move_with_a_nonlinear_vae_is_exact` | mean x₀, z = −70.8 |
//! | VAE: r(z′ \| x) for r(z′ \| x′) (encoder at the current state) | `learned_moves_sample_both_wells_of_the_double_well` | P(−1.75 < x < −1.5), z = +10.9 |
//! | VAE buffer: r(z′ᵢ \| x′ᵢ₊₁) (encoder at the next draw) | same | P(−2 < x < −1.75), z = −5.9 |
//! | latent walk: Jacobian term with the wrong sign | `latent_walk_through_a_nonlinear_flow_is_exact` | mean x₀, z = +78.7 |
//! | flow independence: Hastings term dropped | `flow_independence_with_a_nonlinear_flow_is_exact` | mean x₀, z = −49.1 |
//! | flow independence: accepted state keeps the old log q (stale cache) | same | mean x₀, z = −48.0 |
//! | balanced flow: `ln a` dropped from the thinned generator's log q | `balanced_flow_moves_are_exact` (at 8 000 steps) | P(−2.4 < x < −2), z = −12.8 |
//! | same, on the internal-coordinate flow thinned by a dihedral | `internal_coordinate_flow_moves_are_exact` | ⟨cos φ₀₁₂₃⟩, z = +11.8 |
//! | flow draws not placed on the chain (`place_like` skipped) | `internal_coordinate_flow_moves_are_exact` | an external coordinate moved |
//! | MALA: Hastings term flipped | `random_walk_particle_walk_and_mala_sample_the_gaussian` | variance x₀, z = −357 |
//! | MALA: backward mean with ∇U(x) for ∇U(x′) | `particle_walk_and_mala_in_three_dimensions_are_exact` | variance x₂, z = +10.1 |
//! | particle walk never moving the last particle | same | mean x₃: the chain never moved it |
//! | balanced flow: `ln a` dropped from the proposed draws only (`ThinnedGenerator::sample`), kept in `log_prob` | `balanced_flow_moves_are_exact` (32 000 steps) | P(−2 < x < −1.75), z = −4.0: marginal |
//!
//! The last one was not detected at 8 000 steps (|z| ≤ 2.5): the proposals it mis-weights
//! (into the thinned left well) change the crossings only slightly, so the run was made four
//! times longer for it (12 s). Earlier rounds (untrained models) also showed: the VAE move
//! without its Gibbs refresh (mean x₀ on the Gaussian, z = −26); an internal-coordinate flow without J_int in its log q (mean bond
//! length, z = −14.4); a mean-free flow's draws not moved to the chain's centre of mass (the
//! centre-of-mass check). The flow's log q is taken on the draw before it is placed; that is
//! exact by construction, since `log_prob` of a mean-free or internal-coordinate flow ignores
//! the external coordinates, so there is no "log q before the shift" bug to plant.

use boltzgen::diagnostics::summarize;
use boltzgen::generator::ThinnedGenerator;
use boltzgen::generator::{torch_lock, DeviceChoice, Flow, FlowConfig, Precision, Vae};
use boltzgen::mcmc::{
    ChainState, Learned, Move, MoveKind, MoveSpec, Proposed, RandomWalk, SampleRun, Sampler,
    SamplerConfig, SamplerObserver, Scheduled, Target,
};
use boltzgen::rng::ChainRng;

/// An observer that hears nothing.
struct NoSamplerObserver;

impl SamplerObserver for NoSamplerObserver {}
use boltzgen::potentials::{DoubleWell2D, Gaussian, Potential};

mod common;
use common::{nonlinear_flow, nonlinear_vae};

const Z_BOUND: f64 = 4.0;

fn gaussian_target() -> Gaussian {
    Gaussian::new(vec![1.0, -1.0], vec![2.0, 0.6, 0.6, 1.0]).unwrap()
}

fn run(
    potential: &dyn Potential,
    learned: Learned,
    moves: Vec<MoveSpec>,
    chains: usize,
    steps: usize,
    seed: u64,
    start: &[f64],
) -> SampleRun {
    let mut config = SamplerConfig::new(chains, 1.0, moves);
    config.seed = seed;
    config.burn_in = 500;
    config.steps = steps;
    config.buffer = 512;
    let mut sampler = Sampler::new(config, potential, start).unwrap();
    sampler.run(potential, learned, |_| Ok(())).unwrap();
    sampler.report()
}

/// z-test of the chain average of `f(x)` against `exact`.
fn check_observable(name: &str, run: &SampleRun, f: impl Fn(&[f64]) -> f64, exact: f64) {
    let series: Vec<Vec<f64>> = run
        .chains
        .iter()
        .map(|c| c.samples.chunks_exact(run.dim).map(&f).collect())
        .collect();
    let refs: Vec<&[f64]> = series.iter().map(|s| s.as_slice()).collect();
    let s = summarize(&refs).unwrap();
    let z = (s.mean - exact) / s.std_error;
    if std::env::var("SHOW_Z").is_ok() {
        eprintln!("{name}: z = {z:.2} tau = {:.1}", s.iat.tau);
    }
    // Sokal's estimate of τ (and so the error bar) is reliable only for chains much longer
    // than τ; 50 τ is the usual rule.
    let per_chain = refs[0].len() as f64;
    assert!(
        per_chain >= 50.0 * s.iat.tau,
        "{name}: chains of {per_chain} draws are too short for tau = {:.1}",
        s.iat.tau
    );
    assert!(
        s.iat.converged,
        "{name}: the series is too short for its autocorrelation time ({:?})",
        s.iat
    );
    assert!(
        z.abs() < Z_BOUND,
        "{name}: {} ± {} against exact {exact} (z = {z:.2}, tau = {:.1}, ESS = {:.0})",
        s.mean,
        s.std_error,
        s.iat.tau,
        s.ess
    );
}

/// Mean and variance of both coordinates, and their covariance.
fn check_gaussian_moments(name: &str, run: &SampleRun) {
    let g = gaussian_target();
    let (m, c) = (g.mean().to_vec(), g.covariance().to_vec());
    for i in 0..2 {
        check_observable(&format!("{name}: mean x{i}"), run, |x| x[i], m[i]);
        check_observable(
            &format!("{name}: variance x{i}"),
            run,
            |x| (x[i] - m[i]).powi(2),
            c[3 * i],
        );
    }
    check_observable(
        &format!("{name}: covariance"),
        run,
        |x| (x[0] - m[0]) * (x[1] - m[1]),
        c[1],
    );
    for mv in &run.moves {
        assert!(
            mv.production.acceptance_rate() > 0.02,
            "{name}: {} accepts {:.3}",
            mv.name,
            mv.production.acceptance_rate()
        );
    }
}

/// The double well's x-marginal, by quadrature, tested bin by bin.
fn check_double_well_histogram(name: &str, run: &SampleRun, u: &DoubleWell2D) {
    // Bins with probability ≥ 0.004, so that each is visited often enough for its error bar
    // (the barrier region, −1 < x < 1, holds only 0.2 %).
    let left = [-2.4, -2.0, -1.75, -1.5, -1.25, -1.0];
    let right = [1.0, 1.4, 1.8, 2.2];
    for w in left.windows(2).chain(right.windows(2)) {
        let exact = u.x_probability(w[0], w[1], run.beta).unwrap();
        assert!(exact > 0.004, "bin [{}, {}) has p = {exact}", w[0], w[1]);
        check_observable(
            &format!("{name}: P({} < x < {})", w[0], w[1]),
            run,
            |x| f64::from(u8::from(x[0] >= w[0] && x[0] < w[1])),
            exact,
        );
    }
    let left = u.x_probability(-10.0, 0.0, run.beta).unwrap();
    check_observable(
        &format!("{name}: left well"),
        run,
        |x| f64::from(u8::from(x[0] < 0.0)),
        left,
    );
}

/// Checks that the learned models of these tests are not the identities that untrained ones
/// are here (every MLP's last layer starts at zero): the flow's log-determinant is far from 0
/// and varies, the VAE's encoder depends on x and its decoder on z. Through identities, a
/// test could not see a Hastings term that confuses x with x′.
fn assert_non_trivial(flow: Option<&Flow>, vae: Option<&Vae>) {
    let points = [[0.3, -0.4], [1.5, 0.2], [-1.2, 0.9]];
    if let Some(flow) = flow {
        let x: Vec<f64> = points.concat();
        let (_, logdet) = flow.inverse(&x).unwrap();
        let spread = logdet.iter().cloned().fold(f64::MIN, f64::max)
            - logdet.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            logdet.iter().all(|l| l.abs() > 0.1) && spread > 0.5,
            "the flow is close to an identity: log|det J| = {logdet:?}"
        );
    }
    if let Some(vae) = vae {
        let z = [0.2, -0.3];
        let xs: Vec<f64> = points[..2].concat();
        let zs: Vec<f64> = [z, z].concat();
        let log_r = vae.encoder_log_prob(&xs, &zs).unwrap();
        assert!(
            (log_r[0] - log_r[1]).abs() > 0.1,
            "the encoder ignores x: log r(z | x) = {log_r:?}"
        );
        let same_x: Vec<f64> = [points[0], points[0]].concat();
        let other_z: Vec<f64> = [z, [1.5, 1.0]].concat();
        let log_p = vae.decoder_log_prob(&same_x, &other_z).unwrap();
        assert!(
            (log_p[0] - log_p[1]).abs() > 0.1,
            "the decoder ignores z: log p(x | z) = {log_p:?}"
        );
    }
}

/// A VAE trained on double-well configurations with the wells in equal shares (exact samples
/// of the left well, every other one mirrored to the right): its encoder tells the wells
/// apart, so a Hastings term that evaluates r(z′ | ·) at the wrong configuration moves weight
/// between them (a VAE trained on unrelated data, as on the Gaussian above, barely shows it).
fn double_well_vae(seed: i64) -> Vae {
    use rand_distr::{Distribution, StandardNormal};
    let u = DoubleWell2D::default();
    let x_sampler = u.x_part().sampler(1.0).unwrap();
    let mut rng = boltzgen::rng::stream(40, 0);
    let data: Vec<f64> = (0..4000)
        .flat_map(|i| {
            let x = -x_sampler.sample(&mut rng).abs();
            let y: f64 = StandardNormal.sample(&mut rng);
            [if i % 2 == 0 { x } else { -x }, y]
        })
        .collect();
    tch::manual_seed(seed);
    let mut vae = Vae::new(
        boltzgen::generator::VaeConfig::new(2, 2, &[32]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = boltzgen::train::TrainConfig {
        steps: 400,
        learning_rate: 1e-2,
        ..Default::default()
    };
    boltzgen::train::train_vae(
        &mut vae,
        &data,
        &config,
        &boltzgen::train::VaeObjective::default(),
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();
    vae
}

#[test]
fn random_walk_particle_walk_and_mala_sample_the_gaussian() {
    let g = gaussian_target();
    let cases = [
        (
            "random walk",
            MoveSpec::new(MoveKind::RandomWalk, 1.0)
                .with_step(0.1)
                .adapting_to(0.4),
        ),
        (
            "particle walk",
            MoveSpec::new(MoveKind::ParticleWalk, 1.0)
                .with_step(3.0)
                .with_spatial_dim(1)
                .adapting_to(0.45),
        ),
        (
            "MALA",
            MoveSpec::new(MoveKind::Mala, 1.0)
                .with_step(0.1)
                .adapting_to(0.57),
        ),
    ];
    for (seed, (name, spec)) in cases.into_iter().enumerate() {
        let r = run(
            &g,
            Learned::none(),
            vec![spec],
            16,
            20_000,
            seed as u64,
            &[0.0, 0.0],
        );
        check_gaussian_moments(name, &r);
        // Adaptation moved every chain's step away from its poor start, then froze it.
        assert_eq!(r.adaptive_steps, 500);
        for c in &r.chains {
            let s = c.step_sizes[0].unwrap();
            assert!(s > 0.3 && s < 2.5, "{name}: adapted step {s}");
        }
    }
}

/// The per-chain moves on two particles in 3-D (six coordinates, correlated within and
/// between the particles): the one-particle walk moves three coordinates at a time, MALA all
/// six along the gradient.
#[test]
fn particle_walk_and_mala_in_three_dimensions_are_exact() {
    // Precision: per-axis stiffnesses, coupling a particle's x and y and the two particles'
    // x; the exact moments are the Gaussian's own (`covariance()`, P⁻¹).
    let mut precision = vec![0.0; 36];
    let scale = [1.0, 0.5, 2.0, 1.5, 0.8, 1.0];
    for i in 0..6 {
        precision[i * 6 + i] = scale[i];
    }
    for (i, j, c) in [
        (0, 1, 0.4 * (0.5f64).sqrt()),
        (3, 4, 0.4 * (1.2f64).sqrt()),
        (0, 3, 0.3 * (1.5f64).sqrt()),
    ] {
        precision[i * 6 + j] = c;
        precision[j * 6 + i] = c;
    }
    let mean = vec![0.5, -1.0, 2.0, 0.0, 1.0, -0.5];
    let g = Gaussian::new(mean.clone(), precision).unwrap();
    let cov = g.covariance();
    let cases = [
        (
            "particle walk 3-D",
            MoveSpec::new(MoveKind::ParticleWalk, 1.0)
                .with_step(0.3)
                .with_spatial_dim(3)
                .adapting_to(0.4),
        ),
        (
            "MALA 3-D",
            MoveSpec::new(MoveKind::Mala, 1.0)
                .with_step(0.2)
                .adapting_to(0.57),
        ),
    ];
    for (seed, (name, spec)) in cases.into_iter().enumerate() {
        let r = run(
            &g,
            Learned::none(),
            vec![spec],
            16,
            20_000,
            40 + seed as u64,
            &[0.0; 6],
        );
        for (i, m) in mean.iter().enumerate() {
            check_observable(&format!("{name}: mean x{i}"), &r, |x| x[i], *m);
        }
        for i in [0, 2, 4] {
            check_observable(
                &format!("{name}: variance x{i}"),
                &r,
                |x| (x[i] - mean[i]).powi(2),
                cov[i * 6 + i],
            );
        }
        for (i, j) in [(0, 1), (3, 4), (0, 3)] {
            check_observable(
                &format!("{name}: covariance x{i} x{j}"),
                &r,
                |x| (x[i] - mean[i]) * (x[j] - mean[j]),
                cov[i * 6 + j],
            );
        }
    }
}

/// A move written outside boltzgen: the point reflection x′ = 2c − x through a fixed c, an
/// involution with unit Jacobian, hence exact with Hastings term 0 for any c. With c off the
/// target's mean, U changes under it, so a wrong Hastings term shows.
struct Reflection {
    centre: Vec<f64>,
}

impl Move for Reflection {
    fn name(&self) -> &str {
        "reflection"
    }

    fn propose(
        &self,
        state: &mut ChainState,
        _step: f64,
        _target: &Target,
        _rng: &mut ChainRng,
        spare: Vec<f64>,
    ) -> boltzgen::Result<Proposed> {
        let mut x = spare;
        x.clear();
        x.extend(state.x.iter().zip(&self.centre).map(|(v, c)| 2.0 * c - v));
        Ok(Proposed::new(x, 0.0))
    }
}

/// A move of one's own joins a sampler run (`MoveKind::Custom` in the config,
/// `Sampler::run_with_moves`), reports under its own name, and the mixture stays exact.
/// Planted once (2026-12-03): the reflection's Hastings term set to +0.5 made the mean of x₀
/// fail (z = +23.4).
#[test]
fn a_move_of_ones_own_joins_the_sampler_and_stays_exact() {
    let g = gaussian_target();
    let mut config = SamplerConfig::new(
        16,
        1.0,
        vec![
            MoveSpec::new(MoveKind::Custom, 1.0),
            MoveSpec::new(MoveKind::RandomWalk, 1.0)
                .with_step(0.5)
                .adapting_to(0.4),
        ],
    );
    config.seed = 50;
    config.burn_in = 500;
    config.steps = 20_000;
    let mut sampler = Sampler::new(config, &g, &[0.0, 0.0]).unwrap();
    let mut moves = vec![
        Scheduled::PerChain(Box::new(Reflection {
            centre: vec![1.3, -0.8],
        })),
        Scheduled::PerChain(Box::new(RandomWalk { step: 0.5 })),
    ];
    sampler
        .run_with_moves(&g, &mut moves, &mut NoSamplerObserver)
        .unwrap();
    let r = sampler.report();
    assert_eq!(r.moves[0].name, "reflection");
    check_gaussian_moments("reflection + random walk", &r);
    // Through the config alone, a custom move is refused by name.
    let mut plain = Sampler::new(sampler.config().clone(), &g, &[0.0, 0.0]).unwrap();
    let e = plain
        .run(&g, Learned::none(), |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("moves[0] (custom)") && e.contains("run_with_moves"),
        "{e}"
    );
}

#[test]
fn flow_independence_with_a_nonlinear_flow_is_exact() {
    let _torch = torch_lock();
    let g = gaussian_target();
    // A flow trained on unrelated data: wrong mean, wrong covariance, a Jacobian that varies.
    let flow = nonlinear_flow();
    assert_non_trivial(Some(&flow), None);
    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.5),
    ];
    let r = run(&g, Learned::flow(&flow), moves, 32, 8_000, 11, &[0.0, 0.0]);
    check_gaussian_moments("flow + random walk", &r);
}

#[test]
fn latent_walk_through_a_nonlinear_flow_is_exact() {
    let _torch = torch_lock();
    let g = gaussian_target();
    let flow = nonlinear_flow();
    assert_non_trivial(Some(&flow), None);
    // This flow squeezes x₁ about fourfold, so a latent walk alone has τ ≈ 300 steps here;
    // the random walk keeps τ short enough for a reliable error bar within CI time. Dropping
    // the Jacobian term still shows (see the header).
    let moves = vec![
        MoveSpec::new(MoveKind::LatentWalk, 1.0)
            .with_step(0.3)
            .adapting_to(0.4),
        MoveSpec::new(MoveKind::RandomWalk, 1.0)
            .with_step(0.5)
            .adapting_to(0.4),
    ];
    let r = run(&g, Learned::flow(&flow), moves, 64, 4_000, 12, &[0.0, 0.0]);
    check_gaussian_moments("latent walk + random walk", &r);
}

#[test]
fn vae_move_with_a_nonlinear_vae_is_exact() {
    let _torch = torch_lock();
    let g = gaussian_target();
    let vae = nonlinear_vae(3);
    assert_non_trivial(None, Some(&vae));
    let moves = vec![
        MoveSpec::new(MoveKind::Vae, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.8),
    ];
    let r = run(
        &g,
        Learned::none().with_vae(&vae),
        moves,
        32,
        8_000,
        13,
        &[0.0, 0.0],
    );
    check_gaussian_moments("vae + random walk", &r);
}

/// The double well has a barrier of about 9 kT: random walks alone cross it a few times per
/// million steps, so this marginal is reached only through the learned moves.
#[test]
fn learned_moves_sample_both_wells_of_the_double_well() {
    let _torch = torch_lock();
    let u = DoubleWell2D::default();
    let flow = nonlinear_flow();
    let vae = double_well_vae(4);
    assert_non_trivial(Some(&flow), Some(&vae));
    let local = MoveSpec::new(MoveKind::RandomWalk, 1.0)
        .with_step(0.5)
        .adapting_to(0.4);
    let flow_run = run(
        &u,
        Learned::flow(&flow),
        vec![MoveSpec::new(MoveKind::Flow, 1.0), local.clone()],
        32,
        8_000,
        21,
        &[1.7, 0.0],
    );
    check_double_well_histogram("flow + random walk", &flow_run, &u);
    let vae_run = run(
        &u,
        Learned::none().with_vae(&vae),
        vec![MoveSpec::new(MoveKind::Vae, 1.0), local],
        32,
        32_000,
        22,
        &[1.7, 0.0],
    );
    check_double_well_histogram("vae + random walk", &vae_run, &u);
}

/// Balanced flow moves: the poor flow's draws thinned by well (kept with probability 0.1 in
/// the left well, which holds 97 % of the weight, and always in the right one), so that the
/// chains propose the minor well far more often than the flow does. The thinning's `ln a`
/// enters the Hastings term, and the marginal stays exact.
#[test]
fn balanced_flow_moves_are_exact() {
    let _torch = torch_lock();
    let u = DoubleWell2D::default();
    let flow = nonlinear_flow();
    let well = |x: &[f64]| usize::from(x[0] >= 0.0);
    let thinned = ThinnedGenerator::new(&flow, &well, vec![0.1, 1.0]).unwrap();
    let learned = Learned {
        independence: Some(&thinned),
        ..Learned::none()
    };
    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0)
            .with_step(0.5)
            .adapting_to(0.4),
    ];
    let r = run(&u, learned, moves, 32, 32_000, 23, &[1.7, 0.0]);
    check_double_well_histogram("balanced flow + random walk", &r, &u);
}

/// All six kinds in one mixture, on the Gaussian.
#[test]
fn a_mixture_of_every_move_is_exact() {
    let _torch = torch_lock();
    let g = gaussian_target();
    let flow = nonlinear_flow();
    let vae = nonlinear_vae(5);
    assert_non_trivial(Some(&flow), Some(&vae));
    let moves = vec![
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.7),
        MoveSpec::new(MoveKind::ParticleWalk, 1.0)
            .with_step(1.0)
            .with_spatial_dim(1),
        MoveSpec::new(MoveKind::Mala, 1.0).with_step(0.8),
        MoveSpec::new(MoveKind::Flow, 0.5),
        MoveSpec::new(MoveKind::LatentWalk, 0.5).with_step(0.5),
        MoveSpec::new(MoveKind::Vae, 0.5),
    ];
    let r = run(
        &g,
        Learned::flow(&flow).with_vae(&vae),
        moves,
        32,
        6_000,
        14,
        &[0.0, 0.0],
    );
    check_gaussian_moments("mixture", &r);
}

/// `U = ½ k Σᵢ |xᵢ − x̄|²` for 3 particles in 2-D: translation invariant, like LJ clusters,
/// with exact internal statistics: `E|x₀ − x̄|² = d (1 − 1/n) / (β k)`.
struct HarmonicToCentre {
    k: f64,
}

impl HarmonicToCentre {
    const N: usize = 3;
    const D: usize = 2;
    fn centre(x: &[f64]) -> [f64; 2] {
        let mut c = [0.0; 2];
        for p in x.chunks(Self::D) {
            c[0] += p[0] / Self::N as f64;
            c[1] += p[1] / Self::N as f64;
        }
        c
    }
}

impl Potential for HarmonicToCentre {
    fn dim(&self) -> usize {
        Self::N * Self::D
    }
    fn name(&self) -> &str {
        "harmonic_to_centre"
    }
    fn compute_energy(&self, x: &[f64]) -> f64 {
        let c = Self::centre(x);
        x.chunks(Self::D)
            .map(|p| 0.5 * self.k * ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)))
            .sum()
    }
    fn compute_energy_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        // Σ (xᵢ − x̄) = 0, so the gradient is k (xᵢ − x̄).
        let c = Self::centre(x);
        for (g, (i, v)) in grad.iter_mut().zip(x.iter().enumerate()) {
            *g = self.k * (v - c[i % Self::D]);
        }
        self.compute_energy(x)
    }
}

#[test]
fn mean_free_flow_moves_keep_the_centre_of_mass_and_are_exact() {
    let _torch = torch_lock();
    tch::manual_seed(3);
    let u = HarmonicToCentre { k: 2.0 };
    let flow = Flow::new(
        FlowConfig::real_nvp(4, 2, &[16])
            .mean_free(3, 2)
            .unwrap()
            .with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    // Centre of mass (5, −3): a mean-free draw lands at the origin and must be moved here.
    let start = [4.0, -3.0, 5.0, -2.0, 6.0, -4.0];
    let flow_only = vec![MoveSpec::new(MoveKind::Flow, 1.0)];
    let r = run(&u, Learned::flow(&flow), flow_only, 4, 400, 21, &start);
    assert!(r.moves[0].production.acceptance_rate() > 0.1);
    for c in &r.chains {
        for x in c.samples.chunks_exact(6) {
            let centre = HarmonicToCentre::centre(x);
            assert!(
                (centre[0] - 5.0).abs() < 1e-9 && (centre[1] + 3.0).abs() < 1e-9,
                "a flow move changed the centre of mass to {centre:?}"
            );
        }
    }
    // With a random walk (which moves the centre of mass) and the flow together, the
    // internal statistics are exact: E|x₀ − x̄|² = 2 · (2/3) / 2.
    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.4),
    ];
    let r = run(&u, Learned::flow(&flow), moves, 32, 4_000, 22, &start);
    check_observable(
        "mean-free flow + random walk: |x0 - centre|^2",
        &r,
        |x| {
            let c = HarmonicToCentre::centre(x);
            (x[0] - c[0]).powi(2) + (x[1] - c[1]).powi(2)
        },
        2.0 / 3.0,
    );
}

/// A five-atom chain whose force field has one term per internal coordinate (four bonds, three
/// angles, two torsions, no non-bonded pairs): in Z-matrix coordinates its Boltzmann density
/// times the Jacobian is a product of one-dimensional densities, so every marginal is a
/// quadrature. Units: nm, kJ/mol, β = 1.
const CHAIN_XML: &str = r#"<?xml version="1.0" ?>
<System openmmVersion="8.6.1" type="System" version="1">
  <Particles>
    <Particle mass="12"/><Particle mass="12"/><Particle mass="12"/><Particle mass="12"/><Particle mass="12"/>
  </Particles>
  <Constraints/>
  <Forces>
    <Force forceGroup="0" name="HarmonicBondForce" type="HarmonicBondForce" usesPeriodic="0" version="2">
      <Bonds>
        <Bond d="0.15" k="1111.111111111111" p1="0" p2="1"/>
        <Bond d="0.15" k="1111.111111111111" p1="1" p2="2"/>
        <Bond d="0.15" k="1111.111111111111" p1="2" p2="3"/>
        <Bond d="0.15" k="1111.111111111111" p1="3" p2="4"/>
      </Bonds>
    </Force>
    <Force forceGroup="1" name="HarmonicAngleForce" type="HarmonicAngleForce" usesPeriodic="0" version="2">
      <Angles>
        <Angle a="1.9" k="44.44444444444444" p1="0" p2="1" p3="2"/>
        <Angle a="1.9" k="44.44444444444444" p1="1" p2="2" p3="3"/>
        <Angle a="1.9" k="44.44444444444444" p1="2" p2="3" p3="4"/>
      </Angles>
    </Force>
    <Force forceGroup="2" name="PeriodicTorsionForce" type="PeriodicTorsionForce" usesPeriodic="0" version="2">
      <Torsions>
        <Torsion k="1.0" p1="0" p2="1" p3="2" p4="3" periodicity="1" phase="0"/>
        <Torsion k="1.5" p1="0" p2="1" p3="2" p4="3" periodicity="3" phase="0"/>
        <Torsion k="2.0" p1="1" p2="2" p3="3" p4="4" periodicity="1" phase="0"/>
      </Torsions>
    </Force>
  </Forces>
</System>
"#;

/// `∫ f w / ∫ w` on `[a, b]` by the midpoint rule.
fn quadrature_mean(a: f64, b: f64, w: impl Fn(f64) -> f64, f: impl Fn(f64) -> f64) -> f64 {
    let n = 200_000;
    let h = (b - a) / n as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..n {
        let x = a + (i as f64 + 0.5) * h;
        num += f(x) * w(x);
        den += w(x);
    }
    num / den
}

/// An internal-coordinate flow proposes new bonds, angles and torsions, keeps the chain's
/// position and orientation, and is exact: its Hastings term carries the Z-matrix Jacobian
/// `J_int = Π r² sin θ`, without which the bond-length mean is off by ≈ 2σ²/r₀.
#[test]
fn internal_coordinate_flow_moves_are_exact() {
    use boltzgen::generator::flow::InternalCoordinates;
    use boltzgen::molecule::ZMatrix;
    use boltzgen::potentials::openmm::OpenMmForceField;
    use rand_distr::{Distribution, Normal};

    let _torch = torch_lock();
    let u = OpenMmForceField::from_xml(CHAIN_XML, std::path::Path::new("chain.xml")).unwrap();
    let bonds = u.bonds();
    let zmatrix = ZMatrix::from_bonds(5, &bonds).unwrap();
    // Rooted at the centre, 1–2–3: q_int = [r₁₂, r₂₃, θ₁₂₃, r₀₁, θ₀₁₂, φ₀₁₂₃, r₃₄, θ₂₃₄, φ₄₃₂₁].
    assert_eq!(zmatrix.root(), [1, 2, 3]);
    // Frames for fitting the normalisation and training the flow: deliberately not the target
    // (narrower bonds, shifted angles, torsions uniform), so the flow is an imperfect proposal.
    let mut rng = boltzgen::rng::stream(5, 0);
    let bond = Normal::new(0.145, 0.025).unwrap();
    let angle = Normal::new(1.95, 0.12).unwrap();
    let frames: Vec<f64> = (0..2000)
        .flat_map(|_| {
            let mut q = vec![0.0; 15];
            q[3] = 1.0;
            for (i, slot) in q[6..].iter_mut().enumerate() {
                *slot = match i {
                    0 | 1 | 3 | 6 => bond.sample(&mut rng),
                    2 | 4 | 7 => angle.sample(&mut rng),
                    _ => std::f64::consts::PI * (2.0 * rand::RngExt::random::<f64>(&mut rng) - 1.0),
                };
            }
            zmatrix.to_cartesian(&q).unwrap()
        })
        .collect();
    let internal = InternalCoordinates::fit(5, &bonds, &frames, 4.0).unwrap();
    tch::manual_seed(8);
    let mut flow = Flow::new(
        FlowConfig::internal_spline(internal, 3, &[16], 6).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let config = boltzgen::train::TrainConfig {
        steps: 100,
        learning_rate: 1e-2,
        ..Default::default()
    };
    boltzgen::train::train_flow(
        &mut flow,
        Some(&frames),
        None,
        &config,
        &mut boltzgen::train::NoObserver,
    )
    .unwrap();

    // The chain sits away from the origin with a generic orientation: flow draws (made in the
    // canonical frame) must be moved onto it.
    let mut q0 = vec![
        0.3, -0.2, 0.5, 1.1, 0.4, -0.7, 0.15, 0.15, 1.9, 0.15, 1.9, 3.0, 0.15, 1.9, 3.0,
    ];
    let start = zmatrix.to_cartesian(&q0).unwrap();
    let flow_only = vec![MoveSpec::new(MoveKind::Flow, 1.0)];
    let r = run(&u, Learned::flow(&flow), flow_only, 4, 300, 31, &start);
    assert!(r.moves[0].production.acceptance_rate() > 0.05);
    for c in &r.chains {
        for x in c.samples.chunks_exact(15) {
            let q = zmatrix.to_internal(x).unwrap();
            for k in 0..6 {
                assert!(
                    (q[k] - q0[k]).abs() < 1e-9,
                    "external coordinate {k} moved: {q:?}"
                );
            }
        }
    }
    q0.clear();

    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.01),
    ];
    let r = run(&u, Learned::flow(&flow), moves, 16, 8_000, 32, &start);
    if std::env::var("SHOW_Z").is_ok() {
        for m in &r.moves {
            eprintln!(
                "{}: acceptance {:.3}",
                m.name,
                m.production.acceptance_rate()
            );
        }
    }
    let q = |x: &[f64]| zmatrix.to_internal(x).unwrap();
    let pi = std::f64::consts::PI;
    let (r0, sigma_r, t0, sigma_t) = (0.15, 0.03, 1.9, 0.15);
    let bond_mean = quadrature_mean(
        0.0,
        1.0,
        |r| r * r * (-(r - r0).powi(2) / (2.0 * sigma_r * sigma_r)).exp(),
        |r| r,
    );
    let angle_mean = quadrature_mean(
        0.0,
        pi,
        |t| t.sin() * (-(t - t0).powi(2) / (2.0 * sigma_t * sigma_t)).exp(),
        |t| t,
    );
    let torsion_1 = |p: f64| (-(1.0 + p.cos()) - 1.5 * (1.0 + (3.0 * p).cos())).exp();
    let torsion_2 = |p: f64| (-2.0 * (1.0 + p.cos())).exp();
    let check_marginals = |name: &str, r: &SampleRun| {
        check_observable(&format!("{name}: bond 1-2"), r, |x| q(x)[6], bond_mean);
        check_observable(&format!("{name}: angle 1-2-3"), r, |x| q(x)[8], angle_mean);
        check_observable(
            &format!("{name}: cos torsion 0-1-2-3"),
            r,
            |x| q(x)[11].cos(),
            quadrature_mean(-pi, pi, torsion_1, f64::cos),
        );
        check_observable(
            &format!("{name}: torsion 0-1-2-3 in (0, 2π/3)"),
            r,
            |x| f64::from(u8::from(q(x)[11] > 0.0 && q(x)[11] < 2.0 * pi / 3.0)),
            quadrature_mean(-pi, pi, torsion_1, |p| {
                f64::from(u8::from(p > 0.0 && p < 2.0 * pi / 3.0))
            }),
        );
        check_observable(
            &format!("{name}: cos torsion 1-2-3-4"),
            r,
            |x| q(x)[14].cos(),
            quadrature_mean(-pi, pi, torsion_2, f64::cos),
        );
    };
    check_marginals("internal flow", &r);
    let flow_acceptance = r.moves[0].production.acceptance_rate();
    assert!(
        flow_acceptance > 0.02,
        "flow moves accept {flow_acceptance}"
    );

    // Balanced moves on the same molecule: the flow's draws thinned by a dihedral region
    // (kept always with φ₀₁₂₃ in (0, 2π/3), a quarter of the time elsewhere). The region is
    // an internal coordinate, which the placement of draws does not change, and ln a enters
    // the Hastings term: the marginals stay the quadrature's.
    let region = |x: &[f64]| match zmatrix.to_internal(x) {
        Ok(q) if q[11] > 0.0 && q[11] < 2.0 * pi / 3.0 => 0,
        _ => 1,
    };
    let thinned = ThinnedGenerator::new(&flow, &region, vec![1.0, 0.25]).unwrap();
    let learned = Learned {
        independence: Some(&thinned),
        ..Learned::none()
    };
    let moves = vec![
        MoveSpec::new(MoveKind::Flow, 1.0),
        MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.01),
    ];
    let r = run(&u, learned, moves, 16, 8_000, 33, &start);
    check_marginals("balanced internal flow", &r);
    let flow_acceptance = r.moves[0].production.acceptance_rate();
    assert!(
        flow_acceptance > 0.02,
        "balanced flow moves accept {flow_acceptance}"
    );
}
