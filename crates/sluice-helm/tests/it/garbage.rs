//! Arbitrary input never panics: every reader returns an error or a value.

use sluice_helm::chart::{Limits, load_archive, parse_metadata};
use sluice_helm::ignore::{Rules, glob_match};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Bytes biased towards the syntax the readers care about.
    fn text(&mut self, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ab1.-_/\\*?[]^!{}:,# \n\t'\"%&*|>~@`\x00\xc3\xa9\xe4\xb8\xad\xff";
        let n = (self.next() as usize) % max;
        (0..n)
            .map(|_| ALPHABET[(self.next() as usize) % ALPHABET.len()])
            .collect()
    }
}

#[test]
fn readers_survive_garbage() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let a = rng.text(40);
        let b = rng.text(40);
        let (sa, sb) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        let _ = glob_match(&sa, &sb);
        let _ = Rules::parse(&sa).map(|r| r.ignore(&sb, true));
        let _ = sluice_helm::resolve_reference_url(&sa, &sb);
        let _ = parse_metadata(&a);
        let _ = sluice_helm::values::parse_values_file(&a);
        let _ = sluice_helm::values::parse_version(&sa);
        let _ = sluice_helm::values::rfc3339_nano(&sa);
        let mut idx = b"apiVersion: v1\nentries:\n  a:\n  - ".to_vec();
        idx.extend_from_slice(&a);
        let _ = sluice_helm::resolve(&idx[..], "a", &sb);
        let _ = sluice_helm::validate(&a[..]);
        let _ = load_archive(&a[..], &Limits::default());
    }
}

#[test]
fn truncated_and_flipped_archives_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::demo_chart(dir.path());
    let good = sluice_helm::package(
        &sluice_helm::chart::load_dir(dir.path(), &Limits::default()).unwrap(),
    )
    .unwrap();
    let mut rng = Rng(42);
    for cut in (0..good.len()).step_by(37) {
        let _ = load_archive(&good[..cut], &Limits::default());
    }
    for _ in 0..300 {
        let mut bad = good.clone();
        let i = (rng.next() as usize) % bad.len();
        bad[i] ^= 1 << (rng.next() % 8);
        let _ = load_archive(&bad[..], &Limits::default());
    }
}
