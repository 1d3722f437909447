//! The committed C header `include/boltzgen.h` must be what cbindgen generates from
//! `src/capi.rs` today. Regenerate it with
//! `BOLTZGEN_BLESS=1 cargo test --release --test capi_header`.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/capi.rs"))
        .generate()
        .expect("cbindgen parses src/capi.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = root.join("include/boltzgen.h");
    if std::env::var_os("BOLTZGEN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/boltzgen.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/boltzgen.h is stale: src/capi.rs changed. Regenerate it with \
         `BOLTZGEN_BLESS=1 cargo test --release --test capi_header` and commit it.\n\
         --- generated ---\n{generated}"
    );
}
