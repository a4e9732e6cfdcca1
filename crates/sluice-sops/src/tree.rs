//! The SOPS tree: which values are encrypted, decrypting them, the MAC.
//!
//! As sops (`sops.go` `Tree.Decrypt`, `aes/cipher.go`):
//! - every leaf (string, number, bool) is visited in document order; map
//!   keys extend the path, list items keep their list's path; `null` is
//!   skipped; the top-level `sops` key is the metadata, not data;
//! - whether a leaf is encrypted depends only on its path and the one
//!   rule of the metadata (`unencrypted_suffix`, default `_unencrypted`;
//!   `encrypted_suffix`; `unencrypted_regex`; `encrypted_regex`);
//! - an encrypted leaf is `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]`,
//!   AES-256-GCM with the data key, the IV as nonce (32 bytes) and the
//!   path joined by `:` plus a trailing `:` as additional data; the empty
//!   string stays empty;
//! - the MAC is SHA-512 over each leaf's plaintext (`True`/`False` for
//!   booleans, Go's shortest decimal for numbers), over encrypted leaves
//!   only when `mac_only_encrypted` (then seeded with SHA-256("sops")),
//!   as upper-case hex, stored encrypted with `lastmodified` (RFC 3339)
//!   as additional data.

use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use regex::Regex;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha512};

use crate::Cause;

const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Rule {
    fn encrypted(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

pub(crate) struct Metadata<'a> {
    pub raw: &'a Value,
    rule: Rule,
    mac: String,
    lastmodified: String,
    mac_only_encrypted: bool,
}

impl<'a> Metadata<'a> {
    pub fn parse(raw: &'a Value) -> Result<Self, Cause> {
        let s = |k: &str| -> Result<Option<String>, Cause> {
            match raw.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(v)) if v.is_empty() => Ok(None),
                Some(Value::String(v)) => Ok(Some(v.clone())),
                Some(_) => Err(Cause::Metadata(format!("'{k}' is not a string"))),
            }
        };
        for k in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if s(k)?.is_some() {
                return Err(Cause::Unsupported(format!(
                    "'{k}' (comments are not part of the parsed tree)"
                )));
            }
        }
        let regex = |k: &str, v: String| {
            Regex::new(&v).map_err(|e| Cause::Metadata(format!("'{k}' is not a valid regex: {e}")))
        };
        let mut rules = Vec::new();
        if let Some(v) = s("unencrypted_suffix")? {
            rules.push(Rule::UnencryptedSuffix(v));
        }
        if let Some(v) = s("encrypted_suffix")? {
            rules.push(Rule::EncryptedSuffix(v));
        }
        if let Some(v) = s("unencrypted_regex")? {
            rules.push(Rule::UnencryptedRegex(regex("unencrypted_regex", v)?));
        }
        if let Some(v) = s("encrypted_regex")? {
            rules.push(Rule::EncryptedRegex(regex("encrypted_regex", v)?));
        }
        if rules.len() > 1 {
            return Err(Cause::Metadata(
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex".into(),
            ));
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.into()));
        let lastmodified = s("lastmodified")?
            .ok_or_else(|| Cause::Metadata("no 'lastmodified'".into()))
            .and_then(|v| {
                go_rfc3339(&v)
                    .ok_or_else(|| Cause::Metadata("'lastmodified' is not an RFC 3339 time".into()))
            })?;
        let mac_only_encrypted = match raw.get("mac_only_encrypted") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Cause::Metadata("'mac_only_encrypted' is not a bool".into())),
        };
        Ok(Metadata {
            raw,
            rule,
            mac: s("mac")?.unwrap_or_default(),
            lastmodified,
            mac_only_encrypted,
        })
    }
}

/// Go's `time.Parse(time.RFC3339, v).Format(time.RFC3339)`: fractional
/// seconds dropped, a zero offset written `Z`.
fn go_rfc3339(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !ok {
        return None;
    }
    let mut rest = &v[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &r[n..];
    }
    let zone = match rest {
        "Z" | "z" => "Z".to_string(),
        z if z.len() == 6
            && matches!(z.as_bytes()[0], b'+' | b'-')
            && z.as_bytes()[3] == b':'
            && z[1..3]
                .bytes()
                .chain(z[4..6].bytes())
                .all(|c| c.is_ascii_digit()) =>
        {
            if &z[1..3] == "00" && &z[4..6] == "00" {
                "Z".to_string()
            } else {
                z.to_string()
            }
        }
        _ => return None,
    };
    Some(format!("{}{}", &v[..19].replace('t', "T"), zone))
}

/// A decrypted leaf, typed as sops typed it.
enum Plain {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Comment,
}

fn enc_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").expect("valid")
    })
}

/// Decrypts one `ENC[...]` value. Errors never quote the value.
fn decrypt_value(enc: &str, key: &[u8; 32], aad: &str) -> Result<Plain, String> {
    let c = enc_regex()
        .captures(enc)
        .ok_or("not in sops' encrypted format ENC[AES256_GCM,...]")?;
    let b64 = |i: usize, what: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(&c[i])
            .map_err(|_| format!("the {what} is not valid base64"))
    };
    let mut data = b64(1, "data")?;
    let iv = b64(2, "iv")?;
    let tag = b64(3, "tag")?;
    if tag.len() != 16 {
        return Err(format!("the tag is {} bytes, not 16", tag.len()));
    }
    data.extend_from_slice(&tag);
    let payload = Payload {
        msg: &data,
        aad: aad.as_bytes(),
    };
    let auth = "AES-GCM authentication failed (wrong data key, or the value, its iv/tag or its key path were changed)";
    let plain = match iv.len() {
        32 => AesGcm::<Aes256, U32>::new_from_slice(key)
            .map_err(|e| e.to_string())?
            .decrypt(Nonce::<U32>::from_slice(&iv), payload)
            .map_err(|_| auth.to_string())?,
        12 => AesGcm::<Aes256, U12>::new_from_slice(key)
            .map_err(|e| e.to_string())?
            .decrypt(Nonce::<U12>::from_slice(&iv), payload)
            .map_err(|_| auth.to_string())?,
        n => return Err(format!("unsupported iv length {n}")),
    };
    let ty = &c[4];
    let text =
        || String::from_utf8(plain.clone()).map_err(|_| "plaintext is not UTF-8".to_string());
    Ok(match ty {
        "str" | "time" => Plain::Str(text()?),
        // Binary values are emitted as strings; Kubernetes manifests only
        // hold text.
        "bytes" => Plain::Str(text()?),
        "int" => Plain::Int(
            text()?
                .parse()
                .map_err(|_| "type int, but not an integer")?,
        ),
        "float" => Plain::Float(
            text()?
                .parse()
                .map_err(|_| "type float, but not a number")?,
        ),
        "bool" => Plain::Bool(go_parse_bool(&text()?).ok_or("type bool, but not a boolean")?),
        "comment" => Plain::Comment,
        other => return Err(format!("unknown value type '{other}'")),
    })
}

fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent (which is what Rust's `Display` prints).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{f}")
    }
}

/// sops' `ToBytes` of a leaf as the JSON store types it (integers within
/// int64 as ints, other numbers as float64).
fn leaf_bytes(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string().into_bytes(),
            None => go_float(n.as_f64()?).into_bytes(),
        },
        _ => return None,
    })
}

struct Walker<'a> {
    meta: &'a Metadata<'a>,
    key: &'a [u8; 32],
    hash: Sha512,
}

impl Walker<'_> {
    /// `None`: the leaf was an encrypted comment and is dropped.
    fn walk(
        &mut self,
        v: &Value,
        path: &mut Vec<String>,
        shown: &str,
        top: bool,
    ) -> Result<Option<Value>, Cause> {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, child) in m {
                    if top && k == "sops" {
                        continue;
                    }
                    path.push(k.clone());
                    let shown = if shown.is_empty() {
                        k.clone()
                    } else {
                        format!("{shown}.{k}")
                    };
                    let r = self.walk(child, path, &shown, false);
                    path.pop();
                    if let Some(c) = r? {
                        out.insert(k.clone(), c);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, child) in items.iter().enumerate() {
                    if let Some(c) = self.walk(child, path, &format!("{shown}[{i}]"), false)? {
                        out.push(c);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Null => Ok(Some(Value::Null)),
            leaf => self.leaf(leaf, path, shown),
        }
    }

    fn leaf(&mut self, v: &Value, path: &[String], shown: &str) -> Result<Option<Value>, Cause> {
        let bad = |reason: String| Cause::Value {
            path: shown.to_string(),
            reason,
        };
        let encrypted = self.meta.rule.encrypted(path);
        let out = if !encrypted {
            v.clone()
        } else {
            let Value::String(s) = v else {
                return Err(bad(
                    "expected an encrypted value (a string), found a plain one".into(),
                ));
            };
            if s.is_empty() {
                Value::String(String::new())
            } else {
                let aad = format!("{}:", path.join(":"));
                match decrypt_value(s, self.key, &aad).map_err(bad)? {
                    Plain::Str(s) => Value::String(s),
                    Plain::Int(i) => Value::Number(i.into()),
                    Plain::Float(f) => Value::Number(
                        Number::from_f64(f).ok_or_else(|| bad("not a finite number".into()))?,
                    ),
                    Plain::Bool(b) => Value::Bool(b),
                    Plain::Comment => return Ok(None),
                }
            }
        };
        if !self.meta.mac_only_encrypted || encrypted {
            let bytes = leaf_bytes(&out).ok_or_else(|| bad("unsupported value".into()))?;
            self.hash.update(&bytes);
        }
        Ok(Some(out))
    }
}

/// Decrypts every document of one file (they share the metadata and the
/// MAC) and, when asked, checks the MAC.
pub(crate) fn decrypt_tree(
    docs: &[Value],
    meta: &Metadata,
    key: &[u8; 32],
    verify_mac: bool,
) -> Result<Vec<Value>, Cause> {
    let mut w = Walker {
        meta,
        key,
        hash: Sha512::new(),
    };
    if meta.mac_only_encrypted {
        w.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut out = Vec::with_capacity(docs.len());
    for d in docs {
        if !d.is_object() {
            return Err(Cause::Parse("a document is not a map".into()));
        }
        let mut path = Vec::new();
        out.push(w.walk(d, &mut path, "", true)?.unwrap_or(Value::Null));
    }
    if verify_mac {
        let computed: String = w
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let stored = if meta.mac.is_empty() {
            String::new()
        } else {
            match decrypt_value(&meta.mac, key, &meta.lastmodified).map_err(Cause::Mac)? {
                Plain::Str(s) => s,
                _ => return Err(Cause::Mac("the stored MAC is not a string".into())),
            }
        };
        if stored != computed {
            return Err(Cause::MacMismatch);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_go_formats_it() {
        assert_eq!(
            go_rfc3339("2024-05-01T10:11:12Z").as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:11:12.123456Z").as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:11:12+00:00").as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
        assert_eq!(
            go_rfc3339("2024-05-01T10:11:12+02:00").as_deref(),
            Some("2024-05-01T10:11:12+02:00")
        );
        assert_eq!(go_rfc3339("2024-05-01 10:11:12"), None);
    }

    #[test]
    fn floats_and_bools_as_sops_hashes_them() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(1e-7), "0.0000001");
        assert_eq!(leaf_bytes(&Value::Bool(true)).unwrap(), b"True");
        assert_eq!(leaf_bytes(&serde_json::json!(42)).unwrap(), b"42");
        assert_eq!(go_parse_bool("True"), Some(true));
        assert_eq!(go_parse_bool("yes"), None);
    }

    #[test]
    fn rules_look_at_every_key_of_the_path() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = Rule::EncryptedRegex(Regex::new("^(data|stringData)$").unwrap());
        assert!(r.encrypted(&p(&["data", "x"])));
        assert!(!r.encrypted(&p(&["metadata", "name"])));
        let r = Rule::UnencryptedSuffix("_unencrypted".into());
        assert!(!r.encrypted(&p(&["a_unencrypted", "b"])));
        assert!(r.encrypted(&p(&["a", "b"])));
    }
}
