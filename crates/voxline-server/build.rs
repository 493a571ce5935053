//! Link settings for the voxline binary and its tests.
//!
//! llama.cpp is linked as shared libraries (libllama, libggml*) while
//! whisper.cpp's own, different ggml is linked statically. Two things keep
//! them apart: symbols from static archives are not exported
//! (`--exclude-libs,ALL`), so libllama binds to its libggml and never to
//! whisper's copy inside the executable; and the binary looks for the
//! shared libraries next to itself (`make build` puts them there) or in
//! `../lib/voxline` of an installed layout.

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--exclude-libs,ALL");
    // RPATH, not RUNPATH: it also applies to libllama's own libggml* needs.
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags,-rpath,$ORIGIN:$ORIGIN/../lib/voxline");
    println!("cargo:rerun-if-changed=build.rs");
}
