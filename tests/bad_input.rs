//! Bad input as files: every config in `tests/fixtures/bad_input/` is refused by `boltzgen run`
//! with exit code 2, a message naming the file and what its first line lists (the key, the
//! frame, the bad value), no panic, no run directory, and no change to the fixtures. And the
//! command line's own bad values (`--threads 0`) the same way.

use std::path::{Path, PathBuf};

mod common;
use common::boltzgen;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad_input")
}

/// The words a fixture's error must contain, from its `# expect: a | b` first line.
fn expected(config: &str) -> Vec<String> {
    config
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect:"))
        .map(|l| l.split('|').map(|w| w.trim().to_string()).collect())
        .unwrap_or_default()
}

/// The files directly in `dir` with their bytes, sorted by path.
fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_config_is_refused_by_name_before_anything_is_written() {
    // A copy, so that the check that nothing changed cannot be fooled by the repository.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, d.join(path.file_name().unwrap())).unwrap();
        if path.extension().is_some_and(|e| e == "toml") {
            cases.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    cases.sort();
    assert!(cases.len() >= 15, "fixtures missing: {cases:?}");
    let before = files_in(d);
    let mut failures = Vec::new();
    for case in &cases {
        let config = std::fs::read_to_string(d.join(case)).unwrap();
        let mentions = expected(&config);
        assert!(!mentions.is_empty(), "{case} has no `# expect:` line");
        let out = format!("out_{case}");
        let o = boltzgen(&["run", case, "-o", &out], d);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let mut problems = Vec::new();
        if o.status.code() != Some(2) {
            problems.push(format!("exit code {:?}", o.status.code()));
        }
        if err.contains("panicked") {
            problems.push("panicked".into());
        }
        for m in mentions.iter().chain(std::iter::once(case)) {
            if !err.contains(m.as_str()) {
                problems.push(format!("`{m}` not named"));
            }
        }
        if d.join(&out).exists() {
            problems.push("a run directory was created".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{case}: {} — stderr: {err}", problems.join(", ")));
        }
    }
    let after = files_in(d);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(before == after, "a refused run changed or left files");
}

#[test]
fn bad_command_line_values_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for threads in ["0", "-1", "100000000000000000000", "many"] {
        let flag = format!("--threads={threads}");
        let o = boltzgen(&["run", &flag, "-o", "out"], d);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "--threads {threads}: {err}");
        assert!(
            err.contains("--threads") && !err.contains("panicked"),
            "{err}"
        );
        assert!(!d.join("out").exists());
    }
    // A GPU that is not there is refused before the run directory exists.
    if !tch::Cuda::is_available() {
        let o = boltzgen(&["run", "--device", "cuda", "-o", "out"], d);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("device") && err.contains("cuda"), "{err}");
        assert!(!d.join("out").exists());
    }
}
