//! Commit and tag signatures, checked as Flux's source-controller checks
//! them for a GitRepository's `spec.verify`:
//!
//! - the signature's format is told by its armor (`openpgp`, `ssh`,
//!   `x509`, `empty`, `unknown`); only OpenPGP and SSH signatures can be
//!   verified;
//! - an OpenPGP signature is checked against each armored key ring in turn
//!   (a ring may hold several keys; the primary key or any subkey may have
//!   signed); the result names the primary key's ID (16 hex digits, upper
//!   case);
//! - an SSH signature (`ssh-keygen -Y sign`, namespace `git`) is checked
//!   against each `authorized_keys`-style list; the result names the key's
//!   SHA-256 fingerprint (`SHA256:…`).
//!
//! Messages carry Flux's wording (`unable to verify payload with any of the
//! given key rings: no matching key`) and never key material.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use russh::keys::ssh_key::{HashAlg, SshSig, authorized_keys::AuthorizedKeys};

/// The namespace git signs with (`ssh-keygen -Y sign -n git`).
pub const SSH_NAMESPACE: &str = "git";

/// A signature's format, as its armor tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenPgp,
    Ssh,
    X509,
    Empty,
    Unknown,
}

impl Format {
    /// The format of `signature` (leading and trailing space ignored).
    pub fn of(signature: &str) -> Format {
        let s = signature.trim();
        if s.starts_with("-----BEGIN PGP SIGNATURE-----") {
            Format::OpenPgp
        } else if s.starts_with("-----BEGIN SSH SIGNATURE-----") {
            Format::Ssh
        } else if s.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            Format::X509
        } else if signature.is_empty() {
            Format::Empty
        } else {
            Format::Unknown
        }
    }

    /// Flux's name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenPgp => "openpgp",
            Format::Ssh => "ssh",
            Format::X509 => "x509",
            Format::Empty => "empty",
            Format::Unknown => "unknown",
        }
    }
}

/// A Git object's signature and the bytes it signs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signed {
    /// Empty when the object is not signed.
    pub signature: String,
    pub payload: Vec<u8>,
}

impl Signed {
    pub fn format(&self) -> Format {
        Format::of(&self.signature)
    }
}

/// The signature of commit `id` (the `gpgsig` header) and the commit
/// without it.
pub fn commit(repo: &gix::Repository, id: gix::ObjectId) -> Result<Signed, String> {
    let commit = repo
        .find_commit(id)
        .map_err(|e| format!("commit {id} not found: {e}"))?;
    let signed = commit
        .signature()
        .map_err(|e| format!("commit {id} cannot be read: {e}"))?;
    Ok(match signed {
        Some((signature, data)) => Signed {
            signature: String::from_utf8_lossy(&signature).into_owned(),
            payload: data.to_bstring().into(),
        },
        None => Signed {
            signature: String::new(),
            payload: commit.data.clone(),
        },
    })
}

/// A tag a checkout went through: annotated (`id` is the tag object's, its
/// signature after the message) or lightweight (no object, no signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub id: Option<gix::ObjectId>,
    pub signed: Signed,
}

impl std::fmt::Display for Tag {
    /// `<name>@<tag object id>`, or the name of a lightweight tag.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}@{id}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The tag named `name` whose object is `target` (what the tag ref points
/// at: a tag object, or for a lightweight tag the commit itself).
pub fn tag(repo: &gix::Repository, name: &str, target: gix::ObjectId) -> Result<Tag, String> {
    let object = repo
        .find_object(target)
        .map_err(|e| format!("tag '{name}' object {target} not found: {e}"))?;
    if object.kind != gix::object::Kind::Tag {
        return Ok(Tag {
            name: name.to_string(),
            id: None,
            signed: Signed::default(),
        });
    }
    let data = &object.data;
    let (payload, signature) = split_tag(data);
    Ok(Tag {
        name: name.to_string(),
        id: Some(target),
        signed: Signed {
            signature: String::from_utf8_lossy(signature).into_owned(),
            payload: payload.to_vec(),
        },
    })
}

/// A tag object's bytes split before the last line that opens a signature
/// (git's `parse_signed_buffer`); all payload when there is none.
fn split_tag(data: &[u8]) -> (&[u8], &[u8]) {
    const MARKERS: [&[u8]; 4] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN SSH SIGNATURE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
    ];
    let mut cut = data.len();
    let mut start = 0;
    while start < data.len() {
        let line = &data[start..];
        if MARKERS.iter().any(|m| line.starts_with(m)) {
            cut = start;
        }
        match line.iter().position(|&b| b == b'\n') {
            Some(n) => start += n + 1,
            None => break,
        }
    }
    data.split_at(cut)
}

/// The trusted keys of a `spec.verify.secretRef`: entries ending in
/// `.sshpub` are SSH public keys (`authorized_keys` lines), every other
/// entry an armored OpenPGP key ring (Flux reads `.asc` and, as before
/// `.sshpub` existed, any other key so).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    pub pgp: Vec<String>,
    pub ssh: Vec<String>,
}

impl TrustedKeys {
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut keys = TrustedKeys::default();
        for (name, value) in entries {
            let text = String::from_utf8_lossy(value).into_owned();
            if name.ends_with(".sshpub") {
                keys.ssh.push(text);
            } else {
                keys.pgp.push(text);
            }
        }
        keys
    }
}

/// Verifies `signed`, a `object` (`commit` or `tag`), with `keys`: the
/// signer's primary key ID (OpenPGP) or key fingerprint (SSH), or why not
/// (a failed check reads `unable to verify Git commit: …`, as Flux's).
pub fn verify(signed: &Signed, object: &str, keys: &TrustedKeys) -> Result<String, String> {
    match signed.format() {
        Format::OpenPgp if keys.pgp.is_empty() => Err(
            "PGP signature detected but no PGP public keys found in secret (keys with .asc suffix)"
                .into(),
        ),
        Format::OpenPgp => verify_pgp(&signed.signature, &signed.payload, &keys.pgp)
            .map_err(|e| format!("unable to verify Git {object}: {e}")),
        Format::Ssh if keys.ssh.is_empty() => Err(
            "SSH signature detected but no SSH public keys found in secret (keys with .sshpub suffix)"
                .into(),
        ),
        Format::Ssh => verify_ssh(&signed.signature, &signed.payload, &keys.ssh)
            .map_err(|e| format!("unable to verify Git {object} SSH signature: {e}")),
        other => Err(format!("unsupported signature type: {}", other.as_str())),
    }
}

fn verify_pgp(signature: &str, payload: &[u8], rings: &[String]) -> Result<String, String> {
    if payload.is_empty() {
        return Err("unable to verify payload: payload is empty".into());
    }
    let signature = DetachedSignature::from_string(signature.trim())
        .map(|(s, _)| s)
        .map_err(|e| format!("unable to read the signature: {e}"))?;
    let mut unreadable = None;
    let mut attempted = false;
    for ring in rings {
        let keys = match SignedPublicKey::from_string_many(ring) {
            Ok((keys, _)) => keys.collect::<Result<Vec<_>, _>>(),
            Err(e) => Err(e),
        };
        let keys = match keys {
            Ok(k) if !k.is_empty() => k,
            Ok(_) => {
                unreadable.get_or_insert_with(|| {
                    "unable to read armored key ring: no keys in it".to_string()
                });
                continue;
            }
            Err(e) => {
                unreadable.get_or_insert_with(|| format!("unable to read armored key ring: {e}"));
                continue;
            }
        };
        attempted = true;
        for key in &keys {
            let by_primary = signature.verify(&key.primary_key, payload).is_ok();
            let by_subkey = || {
                key.public_subkeys
                    .iter()
                    .any(|sub| signature.verify(&sub.key, payload).is_ok())
            };
            if by_primary || by_subkey() {
                return Ok(upper_hex(key.primary_key.legacy_key_id().as_ref()));
            }
        }
    }
    match unreadable {
        Some(e) if !attempted => Err(e),
        _ => {
            Err("unable to verify payload with any of the given key rings: no matching key".into())
        }
    }
}

fn verify_ssh(signature: &str, payload: &[u8], lists: &[String]) -> Result<String, String> {
    if payload.is_empty() {
        return Err("unable to verify payload: payload is empty".into());
    }
    let signature = SshSig::from_pem(signature.trim())
        .map_err(|e| format!("unable to unarmor SSH signature: {e}"))?;
    let mut unreadable = None;
    let mut attempted = false;
    for list in lists {
        let keys: Result<Vec<_>, _> = AuthorizedKeys::new(list).collect();
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                unreadable.get_or_insert_with(|| {
                    format!("unable to parse authorized keys: unable to parse authorized key: {e}")
                });
                continue;
            }
        };
        attempted = true;
        for entry in keys {
            let key = entry.public_key();
            if key.verify(SSH_NAMESPACE, payload, &signature).is_ok() {
                return Ok(key.fingerprint(HashAlg::Sha256).to_string());
            }
        }
    }
    match unreadable {
        Some(e) if !attempted => Err(e),
        _ => Err(
            "unable to verify payload with any of the given authorized keys: no matching key"
                .into(),
        ),
    }
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_armor() {
        assert_eq!(Format::of("").as_str(), "empty");
        assert_eq!(
            Format::of("\n-----BEGIN PGP SIGNATURE-----\nx").as_str(),
            "openpgp"
        );
        assert_eq!(Format::of("-----BEGIN SSH SIGNATURE-----").as_str(), "ssh");
        assert_eq!(
            Format::of("-----BEGIN SIGNED MESSAGE-----").as_str(),
            "x509"
        );
        assert_eq!(Format::of("junk").as_str(), "unknown");
    }

    #[test]
    fn a_tag_is_split_before_its_last_signature() {
        let data = b"object 0\ntype commit\ntag v1\n\nmessage\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        let (payload, sig) = split_tag(data);
        assert_eq!(payload, b"object 0\ntype commit\ntag v1\n\nmessage\n");
        assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
        let (payload, sig) = split_tag(b"object 0\n\nplain\n");
        assert_eq!(payload, b"object 0\n\nplain\n");
        assert!(sig.is_empty());
    }

    #[test]
    fn keys_are_sorted_by_suffix_and_unusable_ones_are_named() {
        let keys = TrustedKeys::from_entries([
            ("author.asc", b"ring".as_slice()),
            ("legacy", b"ring2".as_slice()),
            ("laptop.sshpub", b"ssh-ed25519 AAAA".as_slice()),
        ]);
        assert_eq!(keys.pgp.len(), 2);
        assert_eq!(keys.ssh.len(), 1);
        let unsigned = Signed {
            signature: String::new(),
            payload: b"tree x\n".to_vec(),
        };
        assert_eq!(
            verify(&unsigned, "commit", &keys).unwrap_err(),
            "unsupported signature type: empty"
        );
        let pgp = Signed {
            signature: "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n".into(),
            payload: b"tree x\n".to_vec(),
        };
        assert_eq!(
            verify(&pgp, "commit", &TrustedKeys::default()).unwrap_err(),
            "PGP signature detected but no PGP public keys found in secret (keys with .asc suffix)"
        );
        let ssh = Signed {
            signature: "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n".into(),
            payload: b"tree x\n".to_vec(),
        };
        assert!(
            verify(&ssh, "tag", &TrustedKeys::default())
                .unwrap_err()
                .ends_with("(keys with .sshpub suffix)")
        );
    }
}
