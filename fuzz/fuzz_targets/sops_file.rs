//! Decrypting an arbitrary file of any sops store returns plaintext or an
//! error, never a panic: the parsers of the dotenv lines and their flattened
//! `sops_*` metadata, the JSON/YAML documents, the metadata block, the
//! `ENC[...]` values and the age header. Encrypted files come from Git, so
//! from anyone who can push.
//!
//! Input: one byte choosing the format (modulo 5), then the file. Decrypted
//! with the fixtures' test key, MAC verified (the stricter path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_sops::{Format, Identities, Options, decrypt_file};
use std::sync::OnceLock;

const FORMATS: [Format; 5] = [
    Format::Dotenv,
    Format::Binary,
    Format::Json,
    Format::Yaml,
    Format::Ini,
];

fn ids() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        Identities::parse(include_str!(
            "../../crates/sluice-sops/testdata/test.agekey"
        ))
        .expect("the fixtures' key parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(sel) % FORMATS.len()];
    let _ = format.is_encrypted(file);
    let _ = decrypt_file(file, format, ids(), &Options::default(), "fuzz");
});
