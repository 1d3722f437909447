//! Every example config parses and checks against its system, and its data files exist.
//! (Running them is the README's and CI's business: each takes up to a few minutes.)

use boltzgen::config::RunConfig;

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = RunConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            if let Some(t) = config.data.as_ref().and_then(|d| d.trajectory.as_ref()) {
                for t in t.paths() {
                    assert!(t.is_file(), "{}: {} missing", path.display(), t.display());
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 6, "found {seen} example configs");
    RunConfig::load(&dir.join("data/muller_brown_mcmc.toml")).unwrap();
}
