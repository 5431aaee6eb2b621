//! Lets the binary find libtorch without LD_LIBRARY_PATH: torch-sys, a direct dependency,
//! exports the folder it linked against as DEP_TCH_LIBTORCH_LIB, and we bake it in as an rpath.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    // `--as-needed` drops libtorch_cuda because nothing references it by symbol, and then
    // `Cuda::is_available()` is false even on a GPU. Keeping it costs ~400 MB resident on
    // CPU-only machines, so only the `cuda` feature pays for it.
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg=-Wl,--push-state,--no-as-needed,-ltorch_cuda,--pop-state");
    }
}
