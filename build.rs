//! Embeds the libtorch library directory as an rpath, so that the binaries, tests and
//! examples of this crate find `libtorch_cpu.so` without `LD_LIBRARY_PATH`.
//!
//! torch-sys (`links = "tch"`) publishes the directory it linked against as
//! `DEP_TCH_LIBTORCH_LIB`; only crates that depend on torch-sys directly see it, which is why
//! `torch-sys` is a direct dependency of this crate.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(dir) if !dir.is_empty() => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        _ => println!(
            "cargo:warning=torch-sys did not report its libtorch directory; \
             binaries will need LD_LIBRARY_PATH to find libtorch"
        ),
    }
}
