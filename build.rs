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
            // libtorch registers its CUDA backend from static initialisers in
            // libtorch_cuda.so. Nothing in tch references a symbol of it, so the linker's
            // --as-needed would drop it and `Cuda::is_available()` would be false even on a
            // GPU machine. Link it unconditionally when the libtorch in use has it (the pip
            // wheel's libtorch_cuda.so also loads on machines without a GPU).
            if std::path::Path::new(&dir)
                .join("libtorch_cuda.so")
                .is_file()
            {
                println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
            }
        }
        _ => println!(
            "cargo:warning=torch-sys did not report its libtorch directory; \
             binaries will need LD_LIBRARY_PATH to find libtorch"
        ),
    }
}
