//! Decryption of SOPS-encrypted documents with age X25519 identities or PGP keys, the
//! way `sops --decrypt` and Flux's kustomize-controller do it. Pure: no
//! Kubernetes client, no files, no environment; documents come in as
//! [`serde_json::Value`] (in document order, which the MAC depends on) or as
//! YAML/JSON text.
//!
//! ```no_run
//! let ids = sluice_sops::Identities::parse("AGE-SECRET-KEY-1...").unwrap();
//! let text = std::fs::read_to_string("secret.sops.yaml").unwrap();
//! let docs = sluice_sops::decrypt_yaml(&text, &ids, &Default::default(), "secret.sops.yaml");
//! ```
//!
//! Errors name the document and the key path that failed; they never
//! contain plaintext, ciphertext or key material.

mod files;
mod keys;
mod tree;

use serde_json::Value;

pub use files::{Format, decrypt_file};
pub use keys::{Identities, KeyError};

/// How documents are decrypted.
#[derive(Clone, Debug)]
pub struct Options {
    /// Verify the document's MAC (SHA-512 over the plaintext values, as
    /// sops does). Flux's kustomize-controller does not, because kustomize
    /// edits unencrypted fields (namespace, labels) before decryption; each
    /// encrypted value is still authenticated by AES-GCM with its key path.
    pub verify_mac: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { verify_mac: true }
    }
}

/// A failed decryption: which document, and why.
#[derive(Debug, thiserror::Error)]
#[error("{document}: {cause}")]
pub struct Error {
    /// `Kind/namespace/name` for Kubernetes objects, else the caller's label.
    pub document: String,
    pub cause: Cause,
}

/// Why a document could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error("not SOPS-encrypted (no top-level 'sops' block with a 'mac')")]
    NotEncrypted,
    #[error("invalid sops metadata: {0}")]
    Metadata(String),
    #[error("not supported by sluice: {0}")]
    Unsupported(String),
    #[error(
        "the data key is encrypted only for {0}; sluice decrypts with age and PGP keys only (no Vault or KMS)"
    )]
    NoAgeRecipient(String),
    #[error("no age or PGP keys to decrypt with")]
    NoIdentities,
    #[error(
        "no key matches: the data key is encrypted for {recipients}, the keys given are for {have}"
    )]
    NoMatchingIdentity { recipients: String, have: String },
    #[error("decrypting the data key: {0}")]
    DataKey(String),
    #[error("value at '{path}': {reason}")]
    Value { path: String, reason: String },
    #[error(
        "MAC mismatch: the document was modified after sops encrypted it (values, their order, or the sops metadata)"
    )]
    MacMismatch,
    #[error("cannot verify the MAC: {0}")]
    Mac(String),
    #[error("cannot parse the document: {0}")]
    Parse(String),
}

/// Whether `doc` carries SOPS metadata: a top-level `sops` map with a
/// non-empty `mac` (Flux's test for an encrypted resource).
pub fn is_encrypted(doc: &Value) -> bool {
    doc.get("sops")
        .and_then(|s| s.get("mac"))
        .is_some_and(|m| match m {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
}

/// `Kind/namespace/name` (or `Kind/name`) of a Kubernetes object, for
/// messages.
pub fn object_name(obj: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let kind = s(obj.get("kind"));
    let meta = obj.get("metadata");
    let ns = s(meta.and_then(|m| m.get("namespace")));
    let name = s(meta.and_then(|m| m.get("name")));
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    }
}

/// Decrypts one Kubernetes object (JSON tree with a top-level `sops`
/// block); errors name it by kind, namespace and name. The result has no
/// `sops` block.
pub fn decrypt_object(obj: &Value, ids: &Identities, opts: &Options) -> Result<Value, Error> {
    let name = object_name(obj);
    decrypt(obj, ids, opts, &name)
}

/// Decrypts one document (a JSON tree with a top-level `sops` block);
/// `document` names it in errors.
pub fn decrypt(
    doc: &Value,
    ids: &Identities,
    opts: &Options,
    document: &str,
) -> Result<Value, Error> {
    let mut out =
        decrypt_branches(std::slice::from_ref(doc), ids, opts).map_err(|cause| Error {
            document: document.to_string(),
            cause,
        })?;
    Ok(out.remove(0))
}

/// Decrypts a SOPS-encrypted YAML file (one or more documents; the MAC
/// covers all of them, as sops computes it). Comments are dropped: they
/// are not part of the MAC, and encrypted comments are not restored.
pub fn decrypt_yaml(
    text: &str,
    ids: &Identities,
    opts: &Options,
    document: &str,
) -> Result<Vec<Value>, Error> {
    let err = |cause| Error {
        document: document.to_string(),
        cause,
    };
    let mut docs = Vec::new();
    for d in serde_norway::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(d)
            .map_err(|e| err(Cause::Parse(format!("invalid YAML: {}", strip_excerpt(&e)))))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    decrypt_branches(&docs, ids, opts).map_err(err)
}

/// Decrypts a SOPS-encrypted JSON file.
pub fn decrypt_json(
    text: &str,
    ids: &Identities,
    opts: &Options,
    document: &str,
) -> Result<Value, Error> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error {
        document: document.to_string(),
        cause: Cause::Parse(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        )),
    })?;
    decrypt(&v, ids, opts, document)
}

/// YAML parse errors may quote the input; keep only the position.
fn strip_excerpt(e: &serde_norway::Error) -> String {
    match e.location() {
        Some(l) => format!("at line {} column {}", l.line(), l.column()),
        None => "malformed document".to_string(),
    }
}

fn decrypt_branches(docs: &[Value], ids: &Identities, opts: &Options) -> Result<Vec<Value>, Cause> {
    let meta = docs
        .iter()
        .find(|d| is_encrypted(d))
        .and_then(|d| d.get("sops"))
        .ok_or(Cause::NotEncrypted)?;
    let meta = tree::Metadata::parse(meta)?;
    let key = keys::data_key(meta.raw, ids)?;
    tree::decrypt_tree(docs, &meta, &key, opts.verify_mac)
}
