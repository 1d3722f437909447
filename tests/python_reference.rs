//! The Rust side of the Python bindings' bit-for-bit tests: energies and gradients of every
//! built-in potential (and the OpenMM force field of alanine dipeptide) on fixed
//! configurations, and the estimators of the diagnostics on fixed arrays, as computed by the
//! library. `python/tests/test_against_rust.py` checks that `boltzgen.Potential`,
//! `boltzgen.summarize`, … give exactly these numbers.
//!
//! The values live in the committed `python/tests/data/rust_reference.json`; this test fails
//! when the library no longer gives them. Regenerate the file (after a deliberate change) with
//! `BOLTZGEN_BLESS=1 cargo test --release --test python_reference`.

use std::path::Path;

use boltzgen::config::SystemConfig;
use boltzgen::io::trajectory::{read_frames, FrameRange, ReadSpec};
use boltzgen::reweight::ImportanceWeights;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::{json, Value};

/// The built-ins with their parameters (TOML; the defaults where empty), and the scale of the
/// random configurations (wide enough to leave the minima, small enough for finite energies).
const BUILT_INS: &[(&str, &str, f64)] = &[
    ("double_well", "", 1.5),
    ("double_well", "b = 4.0\nc = 0.5", 1.5),
    ("muller_brown", "", 0.8),
    ("many_well", "", 1.5),
    ("gmm40", "", 20.0),
    (
        "gaussian",
        "mean = [0.5, -1.0, 2.0]\nprecision = [2.0, 0.3, 0.0, 0.3, 1.0, 0.1, 0.0, 0.1, 0.5]",
        1.0,
    ),
    ("dw4", "", 2.0),
    ("lj13", "", 1.5),
    ("lj55", "", 2.5),
    ("lj_cluster", "n_particles = 7", 1.5),
    ("lj_fluid", "n_particles = 8\nbox_length = 5.5", 2.0),
];

const ALA2_XML: &str = "examples/data/ala2/system.xml";

fn potential(
    name: &str,
    parameters: Option<toml::Table>,
) -> Box<dyn boltzgen::potentials::Potential> {
    SystemConfig {
        potential: name.into(),
        parameters,
        beta: Some(1.0),
        temperature: None,
        energy_unit: Default::default(),
        length_unit: Default::default(),
    }
    .build()
    .unwrap_or_else(|e| panic!("{name}: {e}"))
    .potential
}

fn gaussian(rng: &mut Xoshiro256PlusPlus, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| scale * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
        .collect()
}

fn energies(u: &dyn boltzgen::potentials::Potential, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len() / u.dim();
    let mut e = vec![0.0; n];
    let mut g = vec![0.0; x.len()];
    u.energies_and_gradients(x, &mut e, &mut g).unwrap();
    (e, g)
}

fn reference(root: &Path) -> Value {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(20261204);
    let mut potentials = Vec::new();
    for &(name, parameters, scale) in BUILT_INS {
        let parameters: Option<toml::Table> =
            (!parameters.is_empty()).then(|| parameters.parse().unwrap());
        let u = potential(name, parameters.clone());
        let x = gaussian(&mut rng, 3 * u.dim(), scale);
        let (e, g) = energies(u.as_ref(), &x);
        assert!(e.iter().all(|v| v.is_finite()), "{name}: {e:?}");
        potentials.push(json!({
            "name": name, "parameters": parameters, "dim": u.dim(), "x": x, "energy": e, "gradient": g,
        }));
    }
    let mut table = toml::Table::new();
    table.insert("xml".into(), ALA2_XML.into());
    let u = potential("openmm", Some(table));
    let x = read_frames(
        &root.join("examples/data/ala2/md_300K.dcd"),
        &ReadSpec {
            frames: FrameRange {
                start: 0,
                stop: Some(3),
                stride: 1,
            },
            selection: None,
            n_particles: u.dim() / 3,
            spatial_dim: 3,
            length_per_angstrom: 0.1,
        },
    )
    .unwrap();
    let (e, g) = energies(u.as_ref(), &x);
    potentials.push(json!({
        "name": "openmm", "parameters": {"xml": ALA2_XML}, "dim": u.dim(), "x": x, "energy": e,
        "gradient": g,
    }));

    // An AR(1) series in 4 chains (τ ≈ 19), and weights of a Gaussian proposal for a Gaussian.
    let mut chains = Vec::new();
    for _ in 0..4 {
        let noise = gaussian(&mut rng, 1000, 1.0);
        let mut v = 0.0;
        let chain: Vec<f64> = noise
            .iter()
            .map(|e| {
                v = 0.9 * v + e;
                v
            })
            .collect();
        chains.push(chain);
    }
    let slices: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
    let s = boltzgen::diagnostics::summarize(&slices).unwrap();
    let x = gaussian(&mut rng, 1000, 1.3);
    let u_draws: Vec<f64> = x.iter().map(|x| 0.5 * x * x).collect();
    let log_q: Vec<f64> = x
        .iter()
        .map(|x| -0.5 * (x / 1.3).powi(2) - (1.3 * (2.0 * std::f64::consts::PI).sqrt()).ln())
        .collect();
    let w = ImportanceWeights::new(1.0, &u_draws, &log_q).unwrap();
    let log_z = w.log_z();
    json!({
        "potentials": potentials,
        "summarize": {
            "chains": chains, "mean": s.mean, "std_error": s.std_error, "variance": s.variance,
            "tau": s.iat.tau, "window": s.iat.window, "ess": s.ess, "ess_per_chain": s.ess_per_chain,
            "split_rhat": s.split_rhat,
        },
        "importance_weights": {
            "beta": 1.0, "energies": u_draws, "log_q": log_q, "ess": w.ess(),
            "ess_fraction": w.ess_fraction(), "log_z": log_z.value,
            "log_z_std_error": log_z.std_error, "weights": w.normalized(),
        },
    })
}

#[test]
fn committed_python_reference_is_what_the_library_computes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).unwrap();
    let text = serde_json::to_string_pretty(&reference(root)).unwrap() + "\n";
    let path = root.join("python/tests/data/rust_reference.json");
    if std::env::var_os("BOLTZGEN_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "python/tests/data/rust_reference.json differs from what the library computes now; if \
         the change is deliberate, regenerate it with \
         `BOLTZGEN_BLESS=1 cargo test --release --test python_reference` and commit it"
    );
}
