//! Handing freed heap back to the OS between batches of a long run. A batch's temporaries
//! (residuals, index vectors, libtorch's buffers of 1-4 MB, under the mmap threshold main.rs
//! sets) are freed between long-lived allocations that keep growing (the index's
//! per-feature lists), and glibc keeps the freed pages resident: `saescope index` grew
//! ~500 MB over 40,000 tokens that way, and stays flat with a trim after each batch
//! (BENCHMARKS.md). Loading a model leaves the same kind of garbage (peak RSS of a Qwen 3
//! 0.6B report fell from 2,717 to ~2,480 MiB with a trim after loading).

/// Returns free heap pages to the OS (glibc `malloc_trim`; nothing elsewhere).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
