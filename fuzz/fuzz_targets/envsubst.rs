//! Flux `postBuild` substitution (`sluice_envsubst::substitute`) of
//! arbitrary text with a few variables taken from the input returns the
//! text or an error, never a panic, and in bounded time (libFuzzer's
//! `-timeout` turns a hang into a crash). The text comes from Git (the
//! rendered objects), the variables from the Kustomization and its
//! ConfigMaps and Secrets.
//!
//! Also checked: text without a `$` (or a NUL, which ends the text for
//! Flux's scanner and so here too) comes back unchanged, and an error never
//! shows a variable's value (a sentinel variable is always defined).
//!
//! Also: the output never exceeds `MAX_OUTPUT_BYTES` (nested replace-all
//! expressions grow exponentially; the engine refuses them, see
//! `regressions/envsubst-nested-replace-all`).
//!
//! Input: one byte of flags (bit 0: strict mode), then `name=value` lines,
//! a `---8<---` line and the text. Without that line the whole rest is the
//! text and the variables are a fixed small set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const SEP: &str = "\n---8<---\n";
/// Defined in every run; its value must never appear in an error.
const SENTINEL_NAME: &str = "SLUICE_FUZZ_SECRET";
const SENTINEL_VALUE: &str = "qx7-envsubst-sentinel-4e1d";
/// At most this many variables from the input.
const MAX_VARS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let opts = sluice_envsubst::Options {
        strict: flags & 1 == 1,
    };
    let mut vars = BTreeMap::new();
    let text = match input.split_once(SEP) {
        Some((head, text)) => {
            for line in head.lines().take(MAX_VARS) {
                let (name, value) = line.split_once('=').unwrap_or((line, ""));
                // As the controller loads them: newlines stripped. Names
                // are not validated here, so the engine sees bad ones too.
                let value = sluice_envsubst::normalize_value(value);
                vars.insert(name.to_owned(), value);
            }
            text
        }
        None => {
            for (name, value) in [("a", ""), ("b", "x"), ("c", "xy/z*a?b"), ("D_1", "ÄöÜ")] {
                vars.insert(name.to_owned(), value.to_owned());
            }
            input
        }
    };
    vars.insert(SENTINEL_NAME.to_owned(), SENTINEL_VALUE.to_owned());

    match sluice_envsubst::substitute(text, &vars, opts) {
        Ok(out) => {
            assert!(out.len() <= sluice_envsubst::MAX_OUTPUT_BYTES);
            if !text.contains(['$', '\0']) {
                assert_eq!(out, text, "text without '$' changed");
            }
        }
        Err(e) => {
            assert!(text.contains('$'), "text without '$' failed: {e}");
            let shown = e.to_string();
            assert!(
                !shown.contains(SENTINEL_VALUE) || text.contains(SENTINEL_VALUE),
                "an error shows a variable's value: {shown}"
            );
        }
    }
});
