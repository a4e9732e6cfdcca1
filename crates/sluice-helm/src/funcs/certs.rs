//! sprig's certificate functions: `genCA`, `genSelfSignedCert`,
//! `genSignedCert` (RSA 2048 keys, as sprig makes them), their `...WithKey`
//! forms (a PEM key given: PKCS#1 `RSA PRIVATE KEY`, SEC1 P-256 `EC
//! PRIVATE KEY`, or PKCS#8), `genPrivateKey` (`rsa` 4096 bits, `ecdsa`
//! P-256, `ed25519`, in Go's PEM forms) and `buildCustomCert`. The result
//! is sprig's `certificate` struct: `.Cert` and `.Key`, PEM.
//!
//! As in sprig: a random 128-bit serial, the subject's common name, the IP
//! and DNS alternative names, key usages key encipherment and digital
//! signature (and certificate signing for a CA), extended key usages
//! server and client auth, basic constraints. The validity starts at
//! midnight UTC of the current day and ends at midnight UTC `daysValid`
//! days later (sprig: now and now + daysValid × 24h). Keys are random:
//! tests check the structure, never the bytes. `genPrivateKey "dsa"` is
//! refused by name.

use std::net::IpAddr;

use rand_core::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::EncodePrivateKey;

use super::{FuncResult, Spec, Value, arg_int, arg_str, failed, s, spec, unsupported};
use crate::template::{FuncError, Object};

pub(super) const FUNCS: &[Spec] = &[
    spec!("genPrivateKey", 1, Some(1), |a| {
        match arg_str(a, 0)? {
            "" | "rsa" => Ok(s(rsa_pem(&rsa_key(4096)?)?)),
            "ecdsa" => Ok(s(ecdsa_p256_pem()?)),
            "ed25519" => Ok(s(ed25519_pem()?)),
            "dsa" => Err(unsupported(
                "genPrivateKey",
                "DSA keys are not generated (rsa, ecdsa and ed25519 are)",
            )),
            other => Ok(s(format!("Unknown type {other}"))),
        }
    }),
    spec!("genCA", 2, Some(2), |a| {
        let (cn, days) = (arg_str(a, 0)?, arg_int(a, 1)?);
        // Bad arguments fail before the (slow) key generation.
        base_params(cn, &[], &[], days)?;
        gen_ca(cn, days, Key::Rsa(Box::new(rsa_key(2048)?)))
    }),
    spec!("genCAWithKey", 3, Some(3), |a| {
        let key = parse_key(arg_str(a, 2)?)?;
        gen_ca(arg_str(a, 0)?, arg_int(a, 1)?, key)
    }),
    spec!("genSelfSignedCert", 4, Some(4), |a| {
        check_cert_args(a)?;
        gen_cert(a, Key::Rsa(Box::new(rsa_key(2048)?)), None)
    }),
    spec!("genSelfSignedCertWithKey", 5, Some(5), |a| {
        let key = parse_key(arg_str(a, 4)?)?;
        gen_cert(a, key, None)
    }),
    spec!("genSignedCert", 5, Some(5), |a| {
        let ca = cert_arg(&a[4])?;
        check_cert_args(a)?;
        gen_cert(a, Key::Rsa(Box::new(rsa_key(2048)?)), Some(ca))
    }),
    spec!("genSignedCertWithKey", 6, Some(6), |a| {
        let ca = cert_arg(&a[4])?;
        let key = parse_key(arg_str(a, 5)?)?;
        gen_cert(a, key, Some(ca))
    }),
    spec!("buildCustomCert", 2, Some(2), build_custom),
];

/// sprig's `certificate`.
#[derive(Clone, Debug)]
pub(crate) struct Certificate {
    pub cert: String,
    pub key: String,
}

impl Object for Certificate {
    fn type_name(&self) -> &str {
        "sprig.certificate"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(s(&self.cert)),
            "Key" => Some(s(&self.key)),
            _ => None,
        }
    }
    fn display(&self) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }
    fn to_value(&self) -> Option<Value> {
        Some(Value::map(
            [
                ("Cert".to_string(), s(&self.cert)),
                ("Key".to_string(), s(&self.key)),
            ]
            .into_iter()
            .collect(),
        ))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn cert_arg(v: &Value) -> Result<Certificate, FuncError> {
    match v {
        Value::Object(o) => o
            .as_any()
            .downcast_ref::<Certificate>()
            .cloned()
            .ok_or_else(|| FuncError::wrong_type("sprig.certificate", v)),
        // A map with Cert and Key (a certificate read back from values).
        Value::Map(m) => match (m.get("Cert"), m.get("Key")) {
            (Some(Value::String(cert)), Some(Value::String(key))) => Ok(Certificate { cert, key }),
            _ => Err(FuncError::wrong_type("sprig.certificate", v)),
        },
        other => Err(FuncError::wrong_type("sprig.certificate", other)),
    }
}

/// A private key: an RSA one, or another kind given as PEM (`pem`, as
/// given) with its PKCS#8 form for signing.
enum Key {
    Rsa(Box<RsaPrivateKey>),
    Other { pem: String, pkcs8: String },
}

/// PEM with Go's `pem.Encode` layout (64-column lines).
fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER of the first PEM block labelled `label`.
fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    data_encoding::BASE64.decode(body.as_bytes()).ok()
}

// Go's encodings of P-256 keys: SEC1 `EC PRIVATE KEY` (MarshalECPrivateKey)
// around the 32-byte scalar and the 65-byte point, and PKCS#8 for signing.
const SEC1_P256_HEAD: [u8; 7] = [0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20];
const SEC1_P256_MID: [u8; 17] = [
    0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0xa1, 0x44, 0x03, 0x42,
    0x00,
];
const PKCS8_P256_HEAD: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
const PKCS8_P256_MID: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];
// Go's MarshalPKCS8PrivateKey of an Ed25519 key: the 32-byte seed.
const PKCS8_ED25519_HEAD: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// `genPrivateKey "ecdsa"`: a P-256 key as Go's `EC PRIVATE KEY`.
fn ecdsa_p256_pem() -> Result<String, FuncError> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| failed("failed to generate private key: ecdsa"))?;
    let der = pkcs8.as_ref();
    // ring's PKCS#8 holds the scalar after `04 20` and the point after
    // `03 42 00`.
    let find = |pat: &[u8], len: usize| {
        der.windows(pat.len())
            .position(|w| w == pat)
            .and_then(|i| der.get(i + pat.len()..i + pat.len() + len))
    };
    let (Some(d), Some(point)) = (find(&[0x04, 0x20], 32), find(&[0x03, 0x42, 0x00], 65)) else {
        return Err(failed(
            "failed to generate private key: unexpected ecdsa encoding",
        ));
    };
    let mut sec1 = SEC1_P256_HEAD.to_vec();
    sec1.extend_from_slice(d);
    sec1.extend_from_slice(&SEC1_P256_MID);
    sec1.extend_from_slice(point);
    Ok(pem_encode("EC PRIVATE KEY", &sec1))
}

/// `genPrivateKey "ed25519"`: Go's PKCS#8 of a random seed.
fn ed25519_pem() -> Result<String, FuncError> {
    let mut der = PKCS8_ED25519_HEAD.to_vec();
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| failed(format!("reading random bytes: {e}")))?;
    der.extend_from_slice(&seed);
    Ok(pem_encode("PRIVATE KEY", &der))
}

fn rsa_key(bits: usize) -> Result<RsaPrivateKey, FuncError> {
    RsaPrivateKey::new(&mut OsRng, bits)
        .map_err(|e| failed(format!("error generating rsa key: {e}")))
}

fn rsa_pem(k: &RsaPrivateKey) -> Result<String, FuncError> {
    k.to_pkcs1_pem(LineEnding::LF)
        .map(|p| p.to_string())
        .map_err(|e| failed(format!("error encoding rsa key: {e}")))
}

/// sprig's `parsePrivateKeyPEM`: PKCS#1 RSA, SEC1 P-256, or PKCS#8.
fn parse_key(pem: &str) -> Result<Key, FuncError> {
    if let Ok(k) = RsaPrivateKey::from_pkcs1_pem(pem) {
        return Ok(Key::Rsa(Box::new(k)));
    }
    if let Some(der) = pem_decode(pem, "EC PRIVATE KEY")
        && der.len() == 121
        && der.starts_with(&SEC1_P256_HEAD)
        && der[39..56] == SEC1_P256_MID
    {
        let mut pkcs8 = PKCS8_P256_HEAD.to_vec();
        pkcs8.extend_from_slice(&der[7..39]);
        pkcs8.extend_from_slice(&PKCS8_P256_MID);
        pkcs8.extend_from_slice(&der[56..]);
        return Ok(Key::Other {
            pem: pem.to_string(),
            pkcs8: pem_encode("PRIVATE KEY", &pkcs8),
        });
    }
    if let Some(der) = pem_decode(pem, "PRIVATE KEY") {
        let pkcs8 = pem_encode("PRIVATE KEY", &der);
        if KeyPair::from_pem(&pkcs8).is_ok() {
            return Ok(Key::Other {
                pem: pem.to_string(),
                pkcs8,
            });
        }
    }
    Err(failed(
        "error parsing private key: no PEM data found or unsupported key type",
    ))
}

impl Key {
    fn pair(&self) -> Result<KeyPair, FuncError> {
        let bad = |e: String| failed(format!("error using private key: {e}"));
        match self {
            Key::Rsa(k) => {
                let pem = k
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| bad(e.to_string()))?;
                KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
                    .map_err(|e| bad(e.to_string()))
            }
            Key::Other { pkcs8, .. } => KeyPair::from_pem(pkcs8).map_err(|e| bad(e.to_string())),
        }
    }

    fn pem(&self) -> Result<String, FuncError> {
        match self {
            Key::Rsa(k) => rsa_pem(k),
            Key::Other { pem, .. } => Ok(pem.clone()),
        }
    }
}

/// sprig's `getNetIPs`.
fn ips(v: &Value) -> Result<Vec<IpAddr>, FuncError> {
    let items: Vec<Value> = match v {
        Value::Nil => Vec::new(),
        Value::List(l) => l.to_vec(),
        other => return Err(FuncError::wrong_type("[]interface {}", other)),
    };
    items
        .iter()
        .map(|ip| match ip {
            Value::String(t) => t
                .parse::<IpAddr>()
                .map_err(|_| failed(format!("error parsing ip: {t}"))),
            other => Err(failed(format!(
                "error parsing ip: {} is not a string",
                other.go_string()
            ))),
        })
        .collect()
}

/// sprig's `getAlternateDNSStrs`.
fn dns_names(v: &Value) -> Result<Vec<String>, FuncError> {
    let items: Vec<Value> = match v {
        Value::Nil => Vec::new(),
        Value::List(l) => l.to_vec(),
        other => return Err(FuncError::wrong_type("[]interface {}", other)),
    };
    items
        .iter()
        .map(|d| match d {
            Value::String(t) => Ok(t.clone()),
            other => Err(failed(format!(
                "error processing alter names: {} is not a string",
                other.go_string()
            ))),
        })
        .collect()
}

/// The base template sprig builds (`getBaseCertTemplate`).
fn base_params(
    cn: &str,
    ips: &[IpAddr],
    dns: &[String],
    days: i64,
) -> Result<CertificateParams, FuncError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let mut sans = Vec::new();
    for d in dns {
        let name = d
            .clone()
            .try_into()
            .map_err(|_| failed(format!("invalid DNS name {}", super::go::quote(d))))?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    p.subject_alt_names = sans;
    let now = super::dates::GoTime::now().secs;
    let end = days
        .checked_mul(86_400)
        .and_then(|d| now.checked_add(d))
        .ok_or_else(|| failed("daysValid out of range"))?;
    let (y, m, d) = day(now)?;
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = day(end)?;
    p.not_after = rcgen::date_time_ymd(y, m, d);
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| failed(format!("reading random bytes: {e}")))?;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    Ok(p)
}

/// The UTC day of `secs`, within the years a certificate can carry.
fn day(secs: i64) -> Result<(i32, u8, u8), FuncError> {
    let (y, m, d) = super::dates::ymd(secs);
    if !(1950..=9999).contains(&y) {
        return Err(failed(
            "daysValid out of range: the certificate would end outside the years 1950 to 9999",
        ));
    }
    Ok((y as i32, m as u8, d as u8))
}

fn gen_ca(cn: &str, days: i64, key: Key) -> FuncResult {
    let mut p = base_params(cn, &[], &[], days)?;
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pair = key.pair()?;
    let cert = p
        .self_signed(&pair)
        .map_err(|e| failed(format!("error creating certificate: {e}")))?;
    Ok(Value::object(Certificate {
        cert: cert.pem(),
        key: key.pem()?,
    }))
}

/// The arguments of a certificate, checked before a key is generated.
fn check_cert_args(a: &[Value]) -> Result<(), FuncError> {
    let cn = arg_str(a, 0)?;
    let (ip_list, dns) = (ips(&a[1])?, dns_names(&a[2])?);
    base_params(cn, &ip_list, &dns, arg_int(a, 3)?).map(|_| ())
}

/// genSelfSignedCert / genSignedCert (and their WithKey forms): `a` is
/// `cn, ips, alternateDNS, daysValid, ...`.
fn gen_cert(a: &[Value], key: Key, ca: Option<Certificate>) -> FuncResult {
    let cn = arg_str(a, 0)?;
    let (ip_list, dns) = (ips(&a[1])?, dns_names(&a[2])?);
    let days = arg_int(a, 3)?;
    let p = base_params(cn, &ip_list, &dns, days)?;
    let pair = key.pair()?;
    let cert = match ca {
        None => p.self_signed(&pair),
        Some(ca) => {
            let ca_key = parse_key(&ca.key)?.pair()?;
            let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)
                .map_err(|e| failed(format!("error parsing certificate: {e}")))?;
            p.signed_by(&pair, &issuer)
        }
    }
    .map_err(|e| failed(format!("error creating certificate: {e}")))?;
    Ok(Value::object(Certificate {
        cert: cert.pem(),
        key: key.pem()?,
    }))
}

/// sprig's `buildCustomCertificate(b64cert, b64key)`.
fn build_custom(a: &[Value]) -> FuncResult {
    use data_encoding::BASE64;
    let (c, k) = (arg_str(a, 0)?, arg_str(a, 1)?);
    let cert = BASE64
        .decode(c.as_bytes())
        .map_err(|_| failed("unable to decode base64 certificate"))?;
    let key = BASE64
        .decode(k.as_bytes())
        .map_err(|_| failed("unable to decode base64 private key"))?;
    let (cert, key) = (
        String::from_utf8_lossy(&cert).into_owned(),
        String::from_utf8_lossy(&key).into_owned(),
    );
    if !cert.contains("-----BEGIN ") {
        return Err(failed("unable to decode certificate"));
    }
    let pair = parse_key(&key)?.pair()?;
    Issuer::from_ca_cert_pem(&cert, pair)
        .map_err(|e| failed(format!("error parsing certificate: decodedCert.Bytes: {e}")))?;
    Ok(Value::object(Certificate { cert, key }))
}
