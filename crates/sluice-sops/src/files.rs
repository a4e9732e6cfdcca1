//! Whole encrypted files of every sops store sluice reads: what Flux's
//! kustomize-controller decrypts in place before a build (the `files:` and
//! `envs:` of a `secretGenerator`, and patch files).
//!
//! The format comes from the file name as sops and Flux choose it
//! ([`Format::for_path`]). Each format is decrypted to the same format:
//!
//! - **dotenv**: `KEY=VALUE` lines; the metadata is flattened into
//!   `sops_*` keys (`sops_age__list_0__map_enc`), with newlines written as
//!   `\n` in values and metadata alike. Written back as sops writes it,
//!   byte for byte, except comments, which are dropped (kustomize ignores
//!   them in env files).
//! - **binary**: a JSON envelope `{"data": "ENC[...]", "sops": {...}}`;
//!   the plaintext is the `data` string's bytes, exactly.
//! - **JSON** and **YAML**: decrypted as documents and printed again
//!   (tab-indented JSON as sops prints it; YAML with two-space indents, where
//!   sops uses four). The values are the same; the bytes may differ.
//! - **INI** is refused, naming the format.

use serde_json::{Map, Value};

use crate::{Cause, Error, Identities, Options};

/// A sops store format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// The format of a file by its name: `.yaml`/`.yml`, `.json` (and
    /// `.dockerconfigjson`, as Flux adds), `.env`, `.ini`, anything else
    /// binary.
    pub fn for_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Format::Yaml
        } else if lower.ends_with(".json") || lower.ends_with(".dockerconfigjson") {
            Format::Json
        } else if lower.ends_with(".env") {
            Format::Dotenv
        } else if lower.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    /// Bytes an encrypted file of this format contains (Flux's markers);
    /// a file without them is left alone.
    pub fn marker(self) -> &'static str {
        match self {
            Format::Yaml => "mac: ENC[",
            Format::Json | Format::Binary => "\"mac\": \"ENC[",
            Format::Dotenv => "sops_mac=ENC[",
            Format::Ini => "[sops]",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
            Format::Binary => "binary",
        }
    }

    /// Whether `data` looks encrypted in this format.
    pub fn is_encrypted(self, data: &[u8]) -> bool {
        let marker = self.marker().as_bytes();
        data.windows(marker.len()).any(|w| w == marker)
    }
}

/// Decrypts a whole file of `format` to the same format; `document` names
/// it in errors.
pub fn decrypt_file(
    data: &[u8],
    format: Format,
    ids: &Identities,
    opts: &Options,
    document: &str,
) -> Result<Vec<u8>, Error> {
    let err = |cause| Error {
        document: document.to_string(),
        cause,
    };
    let text = std::str::from_utf8(data)
        .map_err(|_| err(Cause::Parse(format!("{} file is not UTF-8", format.name()))))?;
    match format {
        Format::Yaml => {
            let docs = crate::decrypt_yaml(text, ids, opts, document)?;
            let mut out = String::new();
            for (i, d) in docs.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                let s = serde_norway::to_string(d)
                    .map_err(|e| err(Cause::Parse(format!("printing YAML: {e}"))))?;
                out.push_str(&s);
            }
            Ok(out.into_bytes())
        }
        Format::Json => {
            let doc = crate::decrypt_json(text, ids, opts, document)?;
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(&doc, &mut ser)
                .map_err(|e| err(Cause::Parse(format!("printing JSON: {e}"))))?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Binary => {
            let doc = crate::decrypt_json(text, ids, opts, document)?;
            match doc.get("data") {
                Some(Value::String(s)) => Ok(s.clone().into_bytes()),
                _ => Err(err(Cause::Parse(
                    "binary file has no 'data' string in its envelope".into(),
                ))),
            }
        }
        Format::Dotenv => {
            let doc = dotenv_tree(text).map_err(err)?;
            let plain = crate::decrypt(&doc, ids, opts, document)?;
            let mut out = String::new();
            if let Value::Object(m) = plain {
                for (k, v) in m {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push_str(&k);
                    out.push('=');
                    out.push_str(&v.replace('\n', "\\n"));
                    out.push('\n');
                }
            }
            Ok(out.into_bytes())
        }
        Format::Ini => Err(err(Cause::Unsupported(
            "INI files (decrypt them to another format)".into(),
        ))),
    }
}

/// A dotenv file as a document: its `KEY=VALUE` pairs in order (values
/// with `\n` turned into newlines, comments left out) and the `sops_*`
/// lines unflattened into a `sops` map.
fn dotenv_tree(text: &str) -> Result<Value, Cause> {
    let mut data = Map::new();
    let mut flat: Vec<(String, String)> = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Cause::Parse(format!(
                "invalid dotenv line {} (no '=')",
                n + 1
            )));
        };
        let v = v.replace("\\n", "\n");
        match k.strip_prefix("sops_") {
            Some(meta) => flat.push((meta.to_string(), v)),
            None => {
                data.insert(k.to_string(), Value::String(v));
            }
        }
    }
    let mut meta = Value::Object(Map::new());
    for (path, v) in flat {
        let v = match path.as_str() {
            "mac_only_encrypted" => Value::Bool(v == "true"),
            "shamir_threshold" => match v.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    return Err(Cause::Metadata(
                        "'shamir_threshold' is not an integer".into(),
                    ));
                }
            },
            _ => Value::String(v),
        };
        unflatten_into(&mut meta, &path, v)?;
    }
    data.insert("sops".into(), meta);
    Ok(Value::Object(data))
}

/// Sets the value at a sops flattened path (`age__list_0__map_enc`: key
/// `age`, list item 0, key `enc`), as sops's `Unflatten` reads it.
fn unflatten_into(root: &mut Value, path: &str, v: Value) -> Result<(), Cause> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    enum Tok<'a> {
        Key(&'a str),
        Index(usize),
    }
    let bad = || Cause::Metadata(format!("malformed flattened metadata key 'sops_{path}'"));
    // Split at each separator; the separator says what the piece after it is.
    let mut toks = Vec::new();
    let (mut start, mut kind, mut i) = (0, MAP, 0);
    let mut finish = |from: usize, to: usize, kind: &str, first: bool| -> Result<(), Cause> {
        let piece = &path[from..to];
        if first || kind == MAP {
            toks.push(Tok::Key(piece));
        } else {
            toks.push(Tok::Index(piece.parse().map_err(|_| bad())?));
        }
        Ok(())
    };
    let mut first = true;
    while i < path.len() {
        let sep = [MAP, LIST].into_iter().find(|s| path[i..].starts_with(s));
        match sep {
            Some(sep) => {
                finish(start, i, kind, first)?;
                first = false;
                kind = sep;
                i += sep.len();
                start = i;
            }
            None => i += path[i..].chars().next().map_or(1, char::len_utf8),
        }
    }
    finish(start, path.len(), kind, first)?;

    let mut cur = root;
    let n = toks.len();
    for (pos, t) in toks.into_iter().enumerate() {
        let leaf = pos + 1 == n;
        match t {
            Tok::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                let m = cur.as_object_mut().ok_or_else(bad)?;
                let slot = m.entry(k.to_string()).or_insert(Value::Null);
                if leaf {
                    *slot = v;
                    return Ok(());
                }
                cur = slot;
            }
            Tok::Index(ix) => {
                if cur.is_null() {
                    *cur = Value::Array(Vec::new());
                }
                let a = cur.as_array_mut().ok_or_else(bad)?;
                // Key lists are short; a huge index is a broken file.
                if ix > 1024 {
                    return Err(bad());
                }
                if a.len() <= ix {
                    a.resize(ix + 1, Value::Null);
                }
                if leaf {
                    a[ix] = v;
                    return Ok(());
                }
                cur = &mut a[ix];
            }
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_as_sops_and_flux_choose_them() {
        assert_eq!(Format::for_path("a.yaml"), Format::Yaml);
        assert_eq!(Format::for_path("dir/a.YML"), Format::Yaml);
        assert_eq!(Format::for_path("a.json"), Format::Json);
        assert_eq!(Format::for_path(".dockerconfigjson"), Format::Json);
        assert_eq!(Format::for_path("app.env"), Format::Dotenv);
        assert_eq!(Format::for_path("app.ini"), Format::Ini);
        assert_eq!(Format::for_path("tls.crt"), Format::Binary);
        assert_eq!(Format::for_path("noext"), Format::Binary);
    }

    #[test]
    fn flattened_metadata_unflattens() {
        let mut root = Value::Null;
        for (k, v) in [
            ("age__list_1__map_recipient", "r1"),
            ("age__list_0__map_recipient", "r0"),
            ("age__list_0__map_enc", "e0"),
            ("key_groups__list_0__map_age__list_0__map_recipient", "g"),
            ("mac", "m"),
        ] {
            unflatten_into(&mut root, k, Value::String(v.into())).unwrap();
        }
        assert_eq!(
            root,
            serde_json::json!({
                "age": [{"recipient": "r0", "enc": "e0"}, {"recipient": "r1"}],
                "key_groups": [{"age": [{"recipient": "g"}]}],
                "mac": "m",
            })
        );
        let mut root = Value::Null;
        assert!(unflatten_into(&mut root, "age__list_x", Value::Null).is_err());
        assert!(unflatten_into(&mut root, "age__list_99999", Value::Null).is_err());
        let mut root = Value::Null;
        unflatten_into(&mut root, "mac", Value::String("m".into())).unwrap();
        assert!(unflatten_into(&mut root, "mac__list_0", Value::Null).is_err());
    }

    #[test]
    fn dotenv_lines_without_equals_are_refused_by_number() {
        let e = dotenv_tree("A=1\nB\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
