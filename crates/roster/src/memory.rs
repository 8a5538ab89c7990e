//! Gives the allocator's free pages back to the system after a burst.
//!
//! glibc's malloc keeps what a burst freed (a first start's transient copies, a wave's
//! requests) in its arenas, so the process's RSS stays at the burst's peak long after
//! its live heap is back down. `malloc_trim` returns every whole free page. musl's
//! allocator (the image's static build) returns memory by itself and has no such call.
use std::time::{Duration, Instant};

/// How often the free pages are given back.
const EVERY: Duration = Duration::from_secs(10);

/// Runs for the life of the process.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let released = trim();
        tracing::debug!(
            released,
            took_us = started.elapsed().as_micros() as u64,
            "malloc_trim"
        );
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
