//! A parallel map that keeps order, for the renderer's independent steps
//! (parsing templates, reading rendered documents). Scoped threads, no pool:
//! a chart is rendered in milliseconds, and a thread costs microseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// `items.iter().map(f)` on up to `threads` threads (the caller's among
/// them), results in the order of `items`. Items are handed out one at a
/// time, so a few large ones do not leave a thread idle. A thread that
/// cannot be started leaves its share to the others.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let r = f(item);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            let _ = std::thread::Builder::new()
                .name("sluice-helm".into())
                .stack_size(8 << 20)
                .spawn_scoped(s, work);
        }
        work();
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .map(|r| match r {
            Some(r) => r,
            // Every index below items.len() was taken by a thread that ran
            // to the end (a panic would have propagated out of the scope).
            None => unreachable!("every item is mapped"),
        })
        .collect()
}

/// Maps items while the caller is still producing them: `produce` hands
/// items to `emit` one at a time (on the caller's thread), while up to
/// `threads - 1` other threads map those already handed over; when
/// `produce` returns, the caller maps what is left alongside them. Results
/// come back with their items, in the order emitted. If `produce` fails,
/// no new item is started and its error is returned.
///
/// The renderer's use: a template's documents are read while the next
/// templates execute (execution is sequential, as in Helm, and left the
/// other thread idle).
pub(crate) fn map_while_producing<T: Send + Sync, R: Send, E>(
    threads: usize,
    produce: impl FnOnce(&mut dyn FnMut(T)) -> Result<(), E>,
    f: impl Fn(&T) -> R + Sync,
) -> Result<Vec<(T, R)>, E> {
    if threads <= 1 {
        let mut out = Vec::new();
        produce(&mut |item| {
            let r = f(&item);
            out.push((item, r));
        })?;
        return Ok(out);
    }
    struct State<T, R> {
        items: Vec<Arc<T>>,
        results: Vec<Option<R>>,
        next: usize,
        /// No more items will come (produced all, or failed).
        closed: bool,
        failed: bool,
    }
    let state: Mutex<State<T, R>> = Mutex::new(State {
        items: Vec::new(),
        results: Vec::new(),
        next: 0,
        closed: false,
        failed: false,
    });
    let ready = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    // Takes the next item, waiting for one while the producer runs
    // (`wait`) or returning None when none is left to take now.
    let take = |wait: bool| -> Option<(usize, Arc<T>)> {
        let mut st = lock();
        loop {
            if st.failed {
                return None;
            }
            if st.next < st.items.len() {
                let i = st.next;
                st.next += 1;
                return Some((i, st.items[i].clone()));
            }
            if st.closed || !wait {
                return None;
            }
            st = ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    };
    let work = |wait: bool| {
        while let Some((i, item)) = take(wait) {
            let r = f(&item);
            drop(item);
            lock().results[i] = Some(r);
        }
    };
    // Closes the queue however the producer ends: a panic in it must not
    // leave the other threads waiting for items (the scope would wait for
    // them, and the panic would become a hang).
    struct CloseOnDrop<'a, F: Fn()>(&'a F);
    impl<F: Fn()> Drop for CloseOnDrop<'_, F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let close = || {
        let mut st = lock();
        if !st.closed {
            st.closed = true;
            st.failed = true;
        }
        drop(st);
        ready.notify_all();
    };
    let produced = std::thread::scope(|s| {
        for _ in 1..threads {
            let _ = std::thread::Builder::new()
                .name("sluice-helm".into())
                .stack_size(8 << 20)
                .spawn_scoped(s, || work(true));
        }
        let _close = CloseOnDrop(&close);
        let produced = produce(&mut |item| {
            let mut st = lock();
            st.items.push(Arc::new(item));
            st.results.push(None);
            drop(st);
            ready.notify_one();
        });
        if produced.is_ok() {
            lock().closed = true;
        }
        // Closed, and as failed if the producer failed.
        close();
        if produced.is_ok() {
            work(false);
        }
        produced
    });
    produced?;
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(st.items.len());
    for (item, r) in st.items.into_iter().zip(st.results) {
        // Every worker has ended (the scope joined them) and dropped its
        // handle on the item it mapped, and every item was taken: the
        // producer closed the queue and then took what was left.
        match (Arc::into_inner(item), r) {
            (Some(item), Some(r)) => out.push((item, r)),
            _ => unreachable!("every item is mapped and released"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_on_any_number_of_threads() {
        let items: Vec<u32> = (0..1000).collect();
        for threads in [0, 1, 2, 7, 5000] {
            let out = super::map(&items, threads, |x| x * 2);
            assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
        assert!(super::map(&[] as &[u32], 4, |x| *x).is_empty());
    }

    #[test]
    fn maps_while_producing_in_order() {
        for threads in [0, 1, 2, 5] {
            let out = super::map_while_producing(
                threads,
                |emit| {
                    for i in 0..500u32 {
                        emit(i);
                    }
                    Ok::<_, String>(())
                },
                |x| x * 3,
            )
            .unwrap_or_default();
            let want: Vec<(u32, u32)> = (0..500).map(|i| (i, i * 3)).collect();
            assert_eq!(out, want, "{threads} threads");
        }
    }

    #[test]
    fn a_panicking_producer_panics_instead_of_waiting_forever() {
        for threads in [1, 2, 4] {
            let r = std::panic::catch_unwind(|| {
                super::map_while_producing::<_, _, ()>(
                    threads,
                    |emit| {
                        emit(1u32);
                        panic!("template engine bug");
                    },
                    |x| x + 1,
                )
            });
            assert!(r.is_err(), "{threads} threads");
        }
    }

    #[test]
    fn a_failed_producer_returns_its_error() {
        for threads in [1, 2, 4] {
            let r = super::map_while_producing(
                threads,
                |emit| {
                    emit(1u32);
                    emit(2);
                    Err("template failed")
                },
                |x| x + 1,
            );
            assert_eq!(r, Err("template failed"), "{threads} threads");
        }
    }
}
