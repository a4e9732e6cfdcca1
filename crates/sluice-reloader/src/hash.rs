//! Content hashes of ConfigMaps and Secrets, computed from the same inputs as
//! Stakater Reloader so that both agree on what "changed" means: the entries
//! `key=value` sorted byte-wise and joined with `;`, then SHA-1. ConfigMap
//! `binaryData` values enter base64-encoded; Secret values enter raw.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use sha1::{Digest, Sha1};

/// A 20-byte SHA-1 digest. Only digests are kept in memory, never the data.
pub type ContentHash = [u8; 20];

pub fn configmap_hash(cm: &ConfigMap) -> ContentHash {
    let empty = BTreeMap::new();
    let data = cm.data.as_ref().unwrap_or(&empty);
    let empty_bin = BTreeMap::new();
    let binary = cm.binary_data.as_ref().unwrap_or(&empty_bin);
    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(data.len() + binary.len());
    for (k, v) in data {
        entries.push(entry(k, v.as_bytes()));
    }
    for (k, v) in binary {
        entries.push(entry(k, base64_std(&v.0).as_bytes()));
    }
    digest(entries)
}

pub fn secret_hash(secret: &Secret) -> ContentHash {
    let empty: BTreeMap<String, ByteString> = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    digest(data.iter().map(|(k, v)| entry(k, &v.0)).collect())
}

/// The hash of no content, which Reloader uses for a deleted object.
pub fn empty_hash() -> ContentHash {
    digest(Vec::new())
}

/// Lower-case hex, as Reloader prints it.
pub fn to_hex(hash: &ContentHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + 1 + value.len());
    e.extend_from_slice(key.as_bytes());
    e.push(b'=');
    e.extend_from_slice(value);
    e
}

fn digest(mut entries: Vec<Vec<u8>>) -> ContentHash {
    entries.sort_unstable();
    let mut hasher = Sha1::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            hasher.update(b";");
        }
        hasher.update(e);
    }
    hasher.finalize().into()
}

/// Standard base64 with padding (RFC 4648), as Go's `base64.StdEncoding`.
fn base64_std(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            binary_data: Some(
                binary
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn empty_content_hashes_like_sha1_of_nothing() {
        assert_eq!(
            to_hex(&empty_hash()),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(configmap_hash(&ConfigMap::default()), empty_hash());
        assert_eq!(secret_hash(&Secret::default()), empty_hash());
    }

    #[test]
    fn configmap_hash_matches_reloaders_inputs() {
        // sha1("a=1;b=2"), the string Reloader hashes for {b: 2, a: 1}.
        let h = configmap_hash(&cm(&[("b", "2"), ("a", "1")], &[]));
        assert_eq!(h, sha1_of(b"a=1;b=2"));
        // binaryData enters base64-encoded and sorts with the rest.
        let h = configmap_hash(&cm(&[("z", "x")], &[("bin", b"hi!")]));
        assert_eq!(h, sha1_of(b"bin=aGkh;z=x"));
    }

    #[test]
    fn secret_values_enter_raw() {
        let s = Secret {
            data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
            ..Secret::default()
        };
        assert_eq!(secret_hash(&s), sha1_of(b"password=s3cret"));
    }

    #[test]
    fn any_change_of_key_or_value_changes_the_hash() {
        let base = configmap_hash(&cm(&[("a", "1")], &[]));
        assert_ne!(base, configmap_hash(&cm(&[("a", "2")], &[])));
        assert_ne!(base, configmap_hash(&cm(&[("b", "1")], &[])));
        assert_eq!(base, configmap_hash(&cm(&[("a", "1")], &[])));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_std(input.as_bytes()), want);
        }
    }

    fn sha1_of(bytes: &[u8]) -> ContentHash {
        Sha1::digest(bytes).into()
    }
}
