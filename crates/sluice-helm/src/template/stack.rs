//! Stack for the recursive parser and executor without a thread per call:
//! work runs on the caller's thread until it has used [`CALLER_BUDGET`]
//! bytes of stack below where it entered, then continues on a thread with a
//! [`BIG_STACK`]-byte stack (reserved, committed as used), and so on.

use std::cell::Cell;

/// Stack the engine may use on the caller's thread.
pub(crate) const CALLER_BUDGET: usize = 256 << 10;
/// Stack of a thread the work moves to.
pub(crate) const BIG_STACK: usize = 256 << 20;
/// What is left unused on such a thread before moving again.
const MARGIN: usize = 1 << 20;

thread_local! {
    /// (stack address where the engine entered this thread, bytes it may
    /// use below it); (0, 0) when outside the engine.
    static BASE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// An address in the current stack frame.
#[inline(always)]
fn here() -> usize {
    let x = 0u8;
    std::hint::black_box(&x) as *const u8 as usize
}

/// Runs `f` as the engine's entry on this thread (restoring what was there).
pub(crate) fn enter<T>(f: impl FnOnce() -> T) -> T {
    let saved = BASE.with(Cell::get);
    if saved.0 == 0 {
        BASE.with(|b| b.set((here(), CALLER_BUDGET)));
    }
    let r = f();
    BASE.with(|b| b.set(saved));
    r
}

/// Runs `f` here if this thread's budget allows, else on a new thread with
/// a big stack (blocking until it is done; a panic goes on).
pub(crate) fn guard<T: Send, E: Send>(
    f: impl FnOnce() -> Result<T, E> + Send,
    spawn_failed: impl FnOnce(String) -> E,
) -> Result<T, E> {
    let (base, budget) = BASE.with(Cell::get);
    if base != 0 && base.saturating_sub(here()) < budget {
        return f();
    }
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("template".into())
            .stack_size(BIG_STACK)
            .spawn_scoped(s, move || {
                BASE.with(|b| b.set((here(), BIG_STACK - MARGIN)));
                f()
            });
        match h {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => Err(spawn_failed(format!(
                "template: cannot start a thread for deep nesting: {e}"
            ))),
        }
    })
}
