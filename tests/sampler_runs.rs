//! The many-chain sampler as a user drives it: reproducibility across thread counts,
//! checkpoint and resume, clear errors; and importance sampling with a known log Z.

use boltzgen::generator::{
    torch_lock, DeviceChoice, DiagonalGaussian, Flow, FlowConfig, Generator, Precision, Vae,
    VaeConfig,
};
use boltzgen::mcmc::{Learned, MoveKind, MoveSpec, Sampler, SamplerConfig};
use boltzgen::potentials::{DoubleWell2D, GaussianMixture, Potential};
use boltzgen::reweight::ImportanceWeights;
use boltzgen::rng::stream;
use boltzgen::Error;

mod common;

fn every_move() -> Vec<MoveSpec> {
    vec![
        MoveSpec::new(MoveKind::RandomWalk, 1.0)
            .with_step(0.3)
            .adapting_to(0.4),
        MoveSpec::new(MoveKind::ParticleWalk, 1.0)
            .with_step(0.3)
            .with_spatial_dim(1),
        MoveSpec::new(MoveKind::Mala, 1.0)
            .with_step(0.2)
            .adapting_to(0.57),
        MoveSpec::new(MoveKind::Flow, 0.5),
        MoveSpec::new(MoveKind::LatentWalk, 0.5)
            .with_step(0.5)
            .adapting_to(0.3),
        MoveSpec::new(MoveKind::Vae, 0.5),
    ]
}

fn config() -> SamplerConfig {
    let mut c = SamplerConfig::new(8, 1.0, every_move());
    c.seed = 77;
    c.burn_in = 300;
    c.steps = 1200;
    c.thin = 3;
    c.buffer = 64;
    c.sync_interval = 50;
    c
}

fn models() -> (Flow, Vae) {
    tch::manual_seed(3);
    let flow = Flow::new(
        FlowConfig::neural_spline(2, 2, &[8], 4, 4.0).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let vae = Vae::new(
        VaeConfig::new(2, 2, &[8]).with_precision(Precision::Float64),
        DeviceChoice::Cpu,
    )
    .unwrap();
    (flow, vae)
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Same seed, 1 or 2 rayon threads: the same chains, bit for bit, with every kind of move.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let _torch = torch_lock();
    tch::set_num_threads(1);
    let u = DoubleWell2D::default();
    let run = |threads| {
        in_pool(threads, || {
            let (flow, vae) = models();
            let mut s = Sampler::new(config(), &u, &[1.7, 0.0]).unwrap();
            s.run(&u, Learned::flow(&flow).with_vae(&vae), |_| Ok(()))
                .unwrap();
            s.report()
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.chains[0].energies.len(), 400);
    assert!(
        one.moves.iter().all(|m| m.production.accepted > 0),
        "{:?}",
        one.moves
    );
    assert_eq!(one, two);
}

/// A run stopped at a block end, checkpointed, and resumed in a new sampler continues the
/// uninterrupted run exactly.
#[test]
fn resumed_run_matches_the_uninterrupted_run_bit_for_bit() {
    let _torch = torch_lock();
    tch::set_num_threads(1);
    let u = DoubleWell2D::default();
    let (flow, vae) = models();
    let learned = Learned::flow(&flow).with_vae(&vae);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chains.ckpt");

    let mut whole = Sampler::new(config(), &u, &[1.7, 0.0]).unwrap();
    whole.run(&u, learned, |_| Ok(())).unwrap();

    let mut first = Sampler::new(config(), &u, &[1.7, 0.0]).unwrap();
    // Stop inside burn-in (adaptation state must survive) and again in production.
    first.run_until(&u, learned, 150).unwrap();
    first.checkpoint(&path).unwrap();
    drop(first);
    let mut second = Sampler::resume(&path, &config(), &u).unwrap();
    assert_eq!(second.steps_done(), 150);
    second.run_until(&u, learned, 900).unwrap();
    second.checkpoint(&path).unwrap();
    let mut third = Sampler::resume(&path, &config(), &u).unwrap();
    third.run(&u, learned, |_| Ok(())).unwrap();
    assert_eq!(third.report(), whole.report());
    assert_eq!(third.report().generator_changes, 0);

    // Resumed with another flow (trained, so its density differs from the untrained one's):
    // the chains' cached log q and the buffered draws came from the old flow, so they are
    // dropped rather than used in a Hastings term. (An untrained flow of another seed would
    // not count: new spline layers are exactly the identity, so its density is the same.)
    let other_flow = common::nonlinear_flow();
    let mut swapped = Sampler::resume(&path, &config(), &u).unwrap();
    swapped
        .run(&u, Learned::flow(&other_flow).with_vae(&vae), |_| Ok(()))
        .unwrap();
    assert_eq!(swapped.report().generator_changes, 1);
    assert_ne!(swapped.report(), whole.report());

    // A finished run can be extended: only `steps` may change.
    let mut longer = config();
    longer.steps += 300;
    third.checkpoint(&path).unwrap();
    let mut extended = Sampler::resume(&path, &longer, &u).unwrap();
    extended.run(&u, learned, |_| Ok(())).unwrap();
    assert_eq!(extended.report().chains[0].energies.len(), 500);
}

fn expect_checkpoint_error(result: Result<Sampler, Error>, path: &std::path::Path, words: &str) {
    match result {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(words), "{msg}");
        }
        Ok(_) => panic!("expected an error mentioning {words}"),
    }
}

#[test]
fn bad_checkpoints_are_clear_errors_never_fresh_starts() {
    let u = DoubleWell2D::default();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chains.ckpt");
    let mut c = config();
    c.moves = vec![MoveSpec::new(MoveKind::RandomWalk, 1.0).with_step(0.5)];
    let mut s = Sampler::new(c.clone(), &u, &[1.7, 0.0]).unwrap();
    s.run_until(&u, Learned::none(), 100).unwrap();
    s.checkpoint(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    // Truncated.
    let truncated = dir.path().join("truncated.ckpt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    expect_checkpoint_error(Sampler::resume(&truncated, &c, &u), &truncated, "corrupted");
    // Not a checkpoint at all.
    let garbage = dir.path().join("garbage.ckpt");
    std::fs::write(&garbage, b"step = 3\n").unwrap();
    expect_checkpoint_error(Sampler::resume(&garbage, &c, &u), &garbage, "checkpoint");
    // Another configuration.
    let mut other = c.clone();
    other.seed += 1;
    expect_checkpoint_error(Sampler::resume(&path, &other, &u), &path, "configuration");
    let mut shorter = c.clone();
    shorter.steps -= 1;
    expect_checkpoint_error(Sampler::resume(&path, &shorter, &u), &path, "shrink");
    // Another system.
    let many = boltzgen::potentials::ManyWell::new(4).unwrap();
    expect_checkpoint_error(Sampler::resume(&path, &c, &many), &path, "coordinates");
    // Missing.
    let missing = dir.path().join("missing.ckpt");
    expect_checkpoint_error(Sampler::resume(&missing, &c, &u), &missing, "");
    // The good file still loads: nothing above touched it.
    assert_eq!(Sampler::resume(&path, &c, &u).unwrap().steps_done(), 100);
}

#[test]
fn configuration_and_wiring_errors_name_the_problem() {
    let u = DoubleWell2D::default();
    let err = |c: SamplerConfig| Sampler::new(c, &u, &[1.7, 0.0]).unwrap_err().to_string();
    let mut c = config();
    c.moves = vec![MoveSpec::new(MoveKind::RandomWalk, 1.0)];
    assert!(err(c.clone()).contains("needs a step size"));
    c.moves = vec![MoveSpec::new(MoveKind::Flow, 1.0).with_step(0.1)];
    assert!(err(c.clone()).contains("takes no step"));
    c.moves = vec![MoveSpec::new(MoveKind::RandomWalk, -1.0).with_step(0.1)];
    assert!(err(c.clone()).contains("weight"));
    c.moves = vec![MoveSpec::new(MoveKind::ParticleWalk, 1.0)
        .with_step(0.1)
        .with_spatial_dim(3)];
    assert!(err(c.clone()).contains("spatial_dim"));
    c.moves = vec![MoveSpec::new(MoveKind::Mala, 1.0)
        .with_step(0.1)
        .adapting_to(1.5)];
    assert!(err(c.clone()).contains("target_acceptance"));
    c.moves = every_move();
    c.chains = 0;
    assert!(err(c.clone()).contains("chains"));

    // Wrong starting points.
    let e = Sampler::new(config(), &u, &[1.0, 2.0, 3.0]).unwrap_err();
    assert!(e.to_string().contains("initial"), "{e}");
    let e = Sampler::new(config(), &u, &[f64::NAN, 0.0]).unwrap_err();
    assert!(
        e.to_string().contains("non-finite") || e.to_string().contains("NaN"),
        "{e}"
    );

    // A learned move without its generator, or with the wrong kind of generator.
    let mut s = Sampler::new(config(), &u, &[1.7, 0.0]).unwrap();
    let e = s
        .run(&u, Learned::none(), |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("moves[3] (flow)"), "{e}");
    let _torch = torch_lock();
    let (_, vae) = models();
    let vae_as_flow = Learned {
        independence: Some(&vae),
        ..Learned::none()
    };
    let e = s.run(&u, vae_as_flow, |_| Ok(())).unwrap_err().to_string();
    assert!(e.contains("exact density"), "{e}");
    let wide = DiagonalGaussian::isotropic(vec![0.0; 3], 1.0).unwrap();
    let wrong_dim = Learned {
        independence: Some(&wide),
        ..Learned::none()
    };
    let e = s.run(&u, wrong_dim, |_| Ok(())).unwrap_err().to_string();
    assert!(e.contains("expected 2, got 3"), "{e}");
}

/// Importance sampling of GMM-40 (log Z = 0 exactly) with a broad Gaussian proposal:
/// log Ẑ within 3 standard errors of 0, and the bootstrap error agrees with the delta method.
#[test]
fn importance_sampling_recovers_the_gmm40_normalizer() {
    let gmm = GaussianMixture::gmm40();
    let q = DiagonalGaussian::isotropic(vec![0.0, 0.0], 25.0).unwrap();
    let draws = q.sample(200_000, &mut stream(40, 0)).unwrap();
    let mut u = vec![0.0; draws.len()];
    gmm.energies(&draws.x, &mut u).unwrap();
    let w = ImportanceWeights::new(1.0, &u, &draws.log_q).unwrap();
    let log_z = w.log_z();
    assert!(
        log_z.value.abs() < 3.0 * log_z.std_error,
        "log Z = {} ± {} (ESS {:.0})",
        log_z.value,
        log_z.std_error,
        w.ess()
    );
    // A useful check needs a small error bar, not just a large one.
    assert!(log_z.std_error < 0.02, "{log_z:?}");
    let boot = w.log_z_bootstrap(200, &mut stream(41, 0)).unwrap();
    assert!(
        (boot.std_error / log_z.std_error - 1.0).abs() < 0.25,
        "{boot:?} {log_z:?}"
    );
    assert_eq!(w.invalid(), 0);
}
