//! Handing freed memory back to the system once a burst of heavy work is over.
//!
//! Rendering a large chart (kube-prometheus-stack: a 6 MiB chart, a 5 MB manifest, its CRDs
//! as JSON) allocates tens of MiB on several threads for a few hundred milliseconds. glibc's
//! allocator keeps what is freed in per-thread arenas for reuse, so a controller that once
//! reconciled such a release stays at its peak resident size for good: measured on 30
//! HelmReleases (bench/helmrelease), 74 MiB private after the burst of which 39 MiB was free
//! memory kept by the allocator. Two remedies, both glibc's own:
//!
//! - [`limit_arenas`] at start: fewer arenas, less memory stranded in one thread's arena
//!   while another thread asks the system for more;
//! - [`fix_mmap_threshold`] at start: every large block (a manifest, a record's JSON, a
//!   response body) gets a mapping of its own, handed back when freed. glibc's default
//!   threshold moves up (to 32 MiB) each time such a block is freed, after which multi-MiB
//!   buffers are carved from the arenas and fragment them: 58-59 MiB peak on
//!   bench/helmrelease with the moving threshold, 52 MiB fixed at 128 KiB;
//! - [`Trimmer`]: controllers call [`Trimmer::work_done`] after a reconcile; once no work
//!   has finished for a settling time, [`trim`] (`malloc_trim(0)`) returns the free pages
//!   of every arena, and during a long burst at least every so often. An idle process trims
//!   never (nothing wakes it). Without the second rule a controller busy with waits (each
//!   look at a release being waited for is a reconcile that finishes) never settles: on
//!   bench/helmrelease the anonymous memory climbed from 12 to 21-24 MiB over the ten
//!   seconds in which releases rendered while others waited, and fell to 9 MiB at the one
//!   trim after all were Ready: more than half of it was free memory the allocator kept.
//!
//! Elsewhere than glibc all are no-ops. No crate wraps these glibc calls; they are declared
//! by the `libc` crate and called here, the only `unsafe` of the runtime.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Asks glibc to use at most `n` malloc arenas (`M_ARENA_MAX`); `false` where that is not
/// glibc, it refused, or `MALLOC_ARENA_MAX` is set (the operator's choice stands). Call
/// before threads are started.
pub fn limit_arenas(n: u16) -> bool {
    set_malloc_option(Param::ArenaMax, i32::from(n.max(1)))
}

/// Fixes glibc's mmap threshold (`M_MMAP_THRESHOLD`) at `bytes`, which also stops glibc from
/// raising it as large blocks are freed; `false` where that is not glibc, it refused, or
/// `MALLOC_MMAP_THRESHOLD_` is set. Call before threads are started.
pub fn fix_mmap_threshold(bytes: u32) -> bool {
    set_malloc_option(
        Param::MmapThreshold,
        i32::try_from(bytes).unwrap_or(i32::MAX),
    )
}

/// The glibc allocator parameters sluice sets.
#[derive(Clone, Copy)]
enum Param {
    ArenaMax,
    MmapThreshold,
}

impl Param {
    /// The environment variable with which an operator sets it instead.
    fn env(self) -> &'static str {
        match self {
            Param::ArenaMax => "MALLOC_ARENA_MAX",
            Param::MmapThreshold => "MALLOC_MMAP_THRESHOLD_",
        }
    }
}

fn set_malloc_option(param: Param, value: i32) -> bool {
    if std::env::var_os(param.env()).is_some() {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = match param {
            Param::ArenaMax => libc::M_ARENA_MAX,
            Param::MmapThreshold => libc::M_MMAP_THRESHOLD,
        };
        // SAFETY: `mallopt` only sets an allocator parameter; any value is accepted or
        // refused by glibc (returning 0), no memory is touched.
        unsafe { libc::mallopt(param, value) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = value;
        false
    }
}

/// Returns the allocator's free memory to the system (glibc's `malloc_trim(0)`, which also
/// releases free pages inside every arena); `true` if some was released.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` takes the arenas' own locks and only releases memory that is
        // free; it is safe to call from any thread at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Trims once a burst of work has settled: a cheap handle controllers share (through the
/// [`crate::Runtime`]) and one task, [`Trimmer::run`], that the process starts.
#[derive(Clone, Debug, Default)]
pub struct Trimmer {
    finished: Arc<Notify>,
}

impl Trimmer {
    /// A piece of work finished (a reconcile): trim once no other finishes for a while.
    pub fn work_done(&self) {
        self.finished.notify_one();
    }

    /// Waits for work to finish, then until none has finished for `settle` or `longest` has
    /// passed, then trims (on a blocking thread), forever. Without [`Trimmer::work_done`] it
    /// never wakes up.
    pub async fn run(self, settle: Duration, longest: Duration) {
        loop {
            self.finished.notified().await;
            self.settled(settle, longest).await;
            let released = tokio::task::spawn_blocking(trim).await.unwrap_or(false);
            tracing::trace!(released, "trimmed the allocator's free memory");
        }
    }

    /// Returns once `settle` has passed without a [`Trimmer::work_done`], or `longest` after
    /// it was called (work that keeps finishing does not put the trim off for good).
    async fn settled(&self, settle: Duration, longest: Duration) {
        let deadline = tokio::time::Instant::now() + longest;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let wait = settle.min(left);
            if tokio::time::timeout(wait, self.finished.notified())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that finishes `times` times, `every` apart, from now on.
    fn finish_work(t: &Trimmer, every: Duration, times: usize) {
        let t = t.clone();
        tokio::spawn(async move {
            for _ in 0..times {
                tokio::time::sleep(every).await;
                t.work_done();
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_settles_only_after_its_last_piece_of_work() {
        let t = Trimmer::default();
        let settle = Duration::from_secs(1);
        let start = tokio::time::Instant::now();
        finish_work(&t, Duration::from_millis(600), 5);
        t.finished.notified().await;
        t.settled(settle, Duration::from_secs(60)).await;
        // The last of five pieces of work 600 ms apart finished at 3 s; one second later.
        assert_eq!(start.elapsed(), Duration::from_millis(4000));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_keeps_finishing_is_trimmed_after_at_most_the_longest_wait() {
        let t = Trimmer::default();
        let (settle, longest) = (Duration::from_secs(1), Duration::from_secs(3));
        let start = tokio::time::Instant::now();
        // Every 400 ms for 10 s: never a settling second.
        finish_work(&t, Duration::from_millis(400), 25);
        t.finished.notified().await;
        let first = start.elapsed();
        t.settled(settle, longest).await;
        assert_eq!(start.elapsed(), first + longest);
        // The next trim of the burst, as `run` waits for it.
        t.finished.notified().await;
        let again = start.elapsed();
        t.settled(settle, longest).await;
        assert_eq!(start.elapsed(), again + longest);
        // The burst ends at 10 s: the trim after it waits for the settling second only.
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(start.elapsed())).await;
        t.finished.notified().await;
        t.settled(settle, longest).await;
        assert_eq!(start.elapsed(), Duration::from_millis(11_000));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_trimmed_without_work() {
        let t = Trimmer::default();
        let waiting = tokio::time::timeout(Duration::from_secs(3600), t.finished.notified());
        assert!(waiting.await.is_err());
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn free_memory_between_live_blocks_is_released() {
        // 64 KiB blocks (under glibc's mmap threshold, so inside an arena), every other one
        // freed: holes the allocator keeps, which only a trim gives back.
        let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 64 << 10]).collect();
        let (kept, freed): (Vec<_>, Vec<_>) = blocks
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        drop(freed);
        assert!(trim(), "8 MiB of holes, nothing released");
        assert!(
            kept.iter()
                .all(|(i, b)| b.len() == 64 << 10 && b[0] == *i as u8)
        );
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn with_a_fixed_threshold_large_blocks_stay_mapped_after_a_larger_one_is_freed() {
        // glibc's own rule, without the fix: freeing a mapped 24 MiB block raises the
        // threshold to 24 MiB, and the next 1 MiB block is carved from an arena. Fixed, it is
        // mapped. `hblkhd` counts the process's mapped bytes; an attempt counts only when the
        // large block was mapped (not served from free arena space) and no other test mapped
        // or unmapped at the same instant, hence a few attempts.
        assert!(
            fix_mmap_threshold(128 << 10) || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        );
        let mapped = || {
            // SAFETY: `mallinfo2` only reads the allocator's counters.
            unsafe { libc::mallinfo2() }.hblkhd
        };
        let attempts: Vec<bool> = (0..5)
            .filter_map(|_| {
                let before = mapped();
                let large = std::hint::black_box(vec![1u8; 24 << 20]);
                let large_mapped = mapped().saturating_sub(before) >= 24 << 20;
                drop(large);
                let before = mapped();
                let block = std::hint::black_box(vec![1u8; 1 << 20]);
                let grew = mapped().saturating_sub(before);
                drop(block);
                large_mapped.then_some(grew >= 1 << 20)
            })
            .collect();
        assert!(!attempts.is_empty(), "no 24 MiB block was mapped");
        assert!(
            attempts.iter().any(|&m| m),
            "a 1 MiB block was carved from an arena: {attempts:?}"
        );
    }
}
