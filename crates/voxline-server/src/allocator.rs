//! The C allocator's arena cap (decision 0080).
//!
//! glibc gives each thread that meets a contended arena a new one, up to
//! eight per core, and an arena's free memory mostly stays with it. A call
//! server runs many short-lived and pooled threads (media clocks, the
//! blocking pool, ONNX Runtime and Whisper workers), so under load the heap
//! grows by arenas rather than by what calls keep: the 12-minute soak grew
//! ~200 MiB with the default and ~36 MiB with two arenas.

/// Arenas used unless `MALLOC_ARENA_MAX` is set in the environment.
pub const DEFAULT_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`DEFAULT_ARENAS`] unless the operator set
/// `MALLOC_ARENA_MAX` (which glibc has already applied). Call first thing in
/// `main`, before any thread starts. Returns the cap set, if any.
pub fn cap_malloc_arenas() -> Option<i32> {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return None;
    }
    set_arena_max(DEFAULT_ARENAS).then_some(DEFAULT_ARENAS)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: mallopt only changes the allocator's tuning parameters; it is
    // called before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}
