//! This crate's tests link whisper.cpp (static, its own ggml) and llama.cpp
//! (shared libraries, another ggml): keep the static copy's symbols out of
//! the executable's dynamic table so libllama binds to its own libggml
//! (see crates/voxline-server/build.rs and decision 0019).

fn main() {
    println!("cargo:rustc-link-arg-tests=-Wl,--exclude-libs,ALL");
    println!("cargo:rerun-if-changed=build.rs");
}
