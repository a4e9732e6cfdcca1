//! age identities, PGP secret keys, and the document's data key.

use std::io::Read;
use std::str::FromStr;

use serde_json::Value;

use crate::Cause;

/// age X25519 identities (`AGE-SECRET-KEY-1...`) and PGP secret keys, from one or more key
/// files.
#[derive(Default)]
pub struct Identities {
    keys: Vec<age::x25519::Identity>,
    pgp: Vec<pgp::composed::SignedSecretKey>,
}

impl std::fmt::Debug for Identities {
    // Never print the secret keys; their public halves are enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("recipients", &self.recipients())
            .field("pgp", &self.pgp_fingerprints())
            .finish()
    }
}

/// A key file that is not a list of age X25519 identities. The message
/// gives the line number, never the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl Identities {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one key file (as `age-keygen` writes it).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut ids = Self::new();
        ids.import(text)?;
        Ok(ids)
    }

    /// Adds the identities of one key file: one `AGE-SECRET-KEY-1...` per
    /// line, `#` comments and blank lines allowed, as age reads it. Returns
    /// how many were added; a file without any is an error.
    pub fn import(&mut self, text: &str) -> Result<usize, KeyError> {
        let mut added = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("AGE-PLUGIN-") {
                return Err(KeyError(format!(
                    "line {}: age plugin identities are not supported, only X25519 keys (AGE-SECRET-KEY-1...)",
                    i + 1
                )));
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| {
                KeyError(format!(
                    "line {}: not an age X25519 identity (AGE-SECRET-KEY-1...)",
                    i + 1
                ))
            })?;
            added.push(id);
        }
        if added.is_empty() {
            return Err(KeyError(
                "no age identity (AGE-SECRET-KEY-1...) found".to_string(),
            ));
        }
        let n = added.len();
        self.keys.extend(added);
        Ok(n)
    }

    /// Adds the PGP secret keys of one armored key file (`gpg --export-secret-keys --armor`,
    /// a decryption Secret's `.asc` entry). Keys protected by a passphrase cannot be used (Flux
    /// imports them without one either). Returns how many were added.
    pub fn import_pgp(&mut self, text: &str) -> Result<usize, KeyError> {
        use pgp::composed::{Deserializable, SignedSecretKey};
        // The parser's own errors are not passed on: they may quote what they could not read,
        // and this is key material.
        let (keys, _) = SignedSecretKey::from_string_many(text).map_err(|_| {
            KeyError(
                "not an armored PGP secret key (as `gpg --export-secret-keys --armor` writes \
                 one)"
                    .to_string(),
            )
        })?;
        let mut added = Vec::new();
        for (i, key) in keys.enumerate() {
            let key = key.map_err(|_| {
                KeyError(format!("key {}: not a PGP secret key this can read", i + 1))
            })?;
            added.push(key);
        }
        if added.is_empty() {
            return Err(KeyError("no PGP secret key found".to_string()));
        }
        let n = added.len();
        self.pgp.extend(added);
        Ok(n)
    }

    /// The fingerprints (upper-case hex) of the PGP keys.
    pub fn pgp_fingerprints(&self) -> Vec<String> {
        use pgp::types::KeyDetails;
        self.pgp
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.keys.len() + self.pgp.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.pgp.is_empty()
    }

    /// The public keys (`age1...`) of the identities.
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }
}

/// Key sources sops knows besides age and PGP, by metadata field.
const OTHER_METHODS: [(&str, &str); 5] = [
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_kv", "Azure Key Vault"),
    ("hc_vault", "HashiCorp Vault"),
    ("hckms", "HuaweiCloud KMS"),
];

fn non_empty_list<'a>(m: &'a Value, k: &str) -> Option<&'a Vec<Value>> {
    m.get(k).and_then(Value::as_array).filter(|l| !l.is_empty())
}

/// Recovers the 32-byte data key from the `age` entries of the metadata
/// (top-level, or the only key group).
pub(crate) fn data_key(meta: &Value, ids: &Identities) -> Result<[u8; 32], Cause> {
    let group = match meta.get("key_groups").and_then(Value::as_array) {
        Some(groups) if groups.len() > 1 => {
            return Err(Cause::Unsupported(format!(
                "Shamir secret sharing over {} key groups",
                groups.len()
            )));
        }
        Some(groups) if groups.len() == 1 => &groups[0],
        _ => meta,
    };
    let age_entries = non_empty_list(group, "age");
    let pgp_entries = non_empty_list(group, "pgp");
    if age_entries.is_none() && pgp_entries.is_none() {
        let methods: Vec<&str> = OTHER_METHODS
            .iter()
            .filter(|(k, _)| non_empty_list(group, k).is_some())
            .map(|(_, name)| *name)
            .collect();
        return Err(if methods.is_empty() {
            Cause::Metadata(
                "no key to decrypt the data key with (no 'age' or 'pgp' entries)".into(),
            )
        } else {
            Cause::NoAgeRecipient(methods.join(", "))
        });
    }
    if ids.is_empty() {
        return Err(Cause::NoIdentities);
    }
    // Each method's entries: what names its recipient, how that is shown, and how its data
    // key is decrypted (when there is a key of that kind at all).
    type Decrypt = fn(&str, &Identities) -> Result<Option<[u8; 32]>, String>;
    let methods: [(&str, _, &str, bool, Decrypt); 2] = [
        (
            "age",
            age_entries,
            "recipient",
            ids.keys.is_empty(),
            decrypt_with,
        ),
        ("pgp", pgp_entries, "fp", ids.pgp.is_empty(), decrypt_pgp),
    ];
    let mut recipients = Vec::new();
    let mut other_error = None;
    for (method, entries, id_field, no_keys, decrypt) in methods {
        for e in entries.into_iter().flatten() {
            let id = e.get(id_field).and_then(Value::as_str).unwrap_or("?");
            recipients.push(match method {
                "pgp" => format!("PGP key {id}"),
                _ => id.to_string(),
            });
            let Some(enc) = e.get("enc").and_then(Value::as_str) else {
                other_error = Some(format!("{method} entry for {id} has no 'enc'"));
                continue;
            };
            if no_keys {
                continue;
            }
            match decrypt(enc, ids) {
                Ok(Some(key)) => return Ok(key),
                Ok(None) => {}
                Err(m) => other_error = Some(format!("{method} entry for {id}: {m}")),
            }
        }
    }
    Err(match other_error {
        Some(m) => Cause::DataKey(m),
        None => {
            let mut have = ids.recipients();
            have.extend(
                ids.pgp_fingerprints()
                    .into_iter()
                    .map(|f| format!("PGP key {f}")),
            );
            Cause::NoMatchingIdentity {
                recipients: recipients.join(", "),
                have: have.join(", "),
            }
        }
    })
}

/// The data key from a `pgp` entry's armored message, with whichever PGP key it was encrypted
/// for; `Ok(None)`: for none of them.
fn decrypt_pgp(enc: &str, ids: &Identities) -> Result<Option<[u8; 32]>, String> {
    use pgp::composed::{Esk, Message};
    use pgp::types::Password;
    let (msg, _) = Message::from_string(enc).map_err(|e| format!("not a PGP message: {e}"))?;
    // Only the keys (or subkeys) the message is addressed to are tried.
    let Message::Encrypted { esk, .. } = &msg else {
        return Err("the PGP message is not encrypted".into());
    };
    let addressed = |key: &pgp::composed::SignedSecretKey| {
        esk.iter().any(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => {
                p.match_identity(&key.primary_key.public_key())
                    || key
                        .secret_subkeys
                        .iter()
                        .any(|s| p.match_identity(&s.key.public_key()))
            }
            Esk::SymKeyEncryptedSessionKey(_) => false,
        })
    };
    let keys: Vec<_> = ids.pgp.iter().filter(|k| addressed(k)).collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let empty = Password::empty();
    let mut msg = msg
        .decrypt_with_keys(keys.iter().map(|_| &empty).collect(), keys)
        .map_err(|e| format!("decrypting the PGP message: {e}"))?;
    if msg.is_compressed() {
        msg = msg
            .decompress()
            .map_err(|e| format!("decompressing the PGP message: {e}"))?;
    }
    let key = msg
        .as_data_vec()
        .map_err(|e| format!("reading the PGP message: {e}"))?;
    <[u8; 32]>::try_from(key.as_slice())
        .map(Some)
        .map_err(|_| format!("the data key is {} bytes, not 32", key.len()))
}

/// `Ok(None)`: none of the identities is a recipient.
fn decrypt_with(enc: &str, ids: &Identities) -> Result<Option<[u8; 32]>, String> {
    let reader = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| e.to_string())?;
    let mut r = match decryptor.decrypt(ids.keys.iter().map(|k| k as &dyn age::Identity)) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut key = Vec::with_capacity(32);
    r.read_to_end(&mut key).map_err(|e| e.to_string())?;
    <[u8; 32]>::try_from(key.as_slice())
        .map(Some)
        .map_err(|_| format!("the data key is {} bytes, not 32", key.len()))
}
