//! Ports for servers a test starts and must name in advance.
//!
//! The usual trick (bind `127.0.0.1:0`, read the port, close the socket) is
//! racy: the kernel hands the same port to the next `:0` bind, for example
//! the metrics listener of the very controller the port was chosen for. CI
//! once failed with `binding 127.0.0.1:38089: Address already in use` for
//! exactly that reason. [`free_port`] therefore picks ports *below* the
//! kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), which
//! `:0` binds and outgoing connections never use, checks that each is free,
//! and never hands the same one out twice in a process. Servers whose port
//! need not be known in advance should still bind `:0`.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port handed out (well above the well-known and most fixed ports).
const LOWEST: u16 = 20_000;

static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port of 127.0.0.1 that is free now and that the kernel does not give to
/// `:0` binds; panics when none is left (a broken test machine).
pub fn free_port() -> u16 {
    let (start, end) = candidates();
    let span = u32::from(end - start);
    // Start somewhere different in each process, so test binaries run one
    // after the other do not retry the same ports.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for i in 0..span {
        let port = start + ((seed.wrapping_add(i.wrapping_mul(7919))) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port of 127.0.0.1 in {start}..{end}");
}

/// The ports below the ephemeral range, or 20000..32768 when the range cannot
/// be read or leaves too little room below it.
fn candidates() -> (u16, u16) {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        });
    match low {
        Some(low) if low >= LOWEST + 1_000 => (LOWEST, low),
        _ => (LOWEST, 32_768),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let (start, end) = candidates();
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let p = free_port();
            assert!((start..end).contains(&p), "{p} not in {start}..{end}");
            assert!(seen.insert(p), "{p} handed out twice");
            // A :0 bind now never lands on a port handed out.
            let eph = TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(!seen.contains(&eph.local_addr().unwrap().port()));
        }
    }
}
