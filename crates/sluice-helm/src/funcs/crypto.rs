//! sprig's random and cryptographic functions (`crypto.go`).
//!
//! Implemented: `randAlphaNum`, `randAlpha`, `randNumeric`, `randAscii`,
//! `randBytes`, `randInt`, `shuffle`, `uuidv4` (the OS random source, as
//! Go's `crypto/rand`), `bcrypt` and `htpasswd` (`$2a$`, cost 10, as
//! golang.org/x/crypto), `derivePassword` (Master Password: scrypt and
//! HMAC-SHA256, deterministic), `encryptAES`/`decryptAES` (AES-256-CBC,
//! random IV, base64). Keys and certificates are in `certs`. Tests check
//! the random functions' shape (length, alphabet), never their value.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use data_encoding::BASE64;
use sha2::Digest as _;

use super::{FuncResult, Spec, Value, arg_int, arg_str, check_len, failed, s, spec};
use crate::template::FuncError;

pub(super) const FUNCS: &[Spec] = &[
    spec!("randAlphaNum", 1, Some(1), |a| rand_chars(
        "randAlphaNum",
        a,
        ALNUM
    )),
    spec!("randAlpha", 1, Some(1), |a| rand_chars(
        "randAlpha",
        a,
        ALPHA
    )),
    spec!("randNumeric", 1, Some(1), |a| rand_chars(
        "randNumeric",
        a,
        b"0123456789"
    )),
    spec!("randAscii", 1, Some(1), |a| rand_chars(
        "randAscii",
        a,
        ASCII
    )),
    spec!("randBytes", 1, Some(1), |a| {
        let n = arg_int(a, 0)?;
        let n =
            usize::try_from(n).map_err(|_| failed("runtime error: makeslice: len out of range"))?;
        check_len("randBytes", n as u128 * 2)?;
        let mut buf = vec![0u8; n];
        fill(&mut buf)?;
        Ok(s(BASE64.encode(&buf)))
    }),
    spec!("shuffle", 1, Some(1), |a| {
        let mut chars: Vec<char> = arg_str(a, 0)?.chars().collect();
        for i in (1..chars.len()).rev() {
            let j = (random_u64()? % (i as u64 + 1)) as usize;
            chars.swap(i, j);
        }
        Ok(s(chars.into_iter().collect::<String>()))
    }),
    spec!("uuidv4", 0, Some(0), |_| {
        let mut b = [0u8; 16];
        fill(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = super::encoding::hex(&b);
        Ok(s(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )))
    }),
    spec!("bcrypt", 1, Some(1), |a| Ok(s(bcrypt_hash(arg_str(a, 0)?)))),
    spec!("htpasswd", 2, Some(2), |a| {
        let (user, pass) = (arg_str(a, 0)?, arg_str(a, 1)?);
        if user.contains(':') {
            return Ok(s(format!("invalid username: {user}")));
        }
        Ok(s(format!("{user}:{}", bcrypt_hash(pass))))
    }),
    spec!("derivePassword", 5, Some(5), derive_password),
    spec!("encryptAES", 2, Some(2), encrypt_aes),
    spec!("decryptAES", 2, Some(2), decrypt_aes),
];

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ASCII: &[u8] = b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// Fills `buf` from the OS random source.
fn fill(buf: &mut [u8]) -> Result<(), FuncError> {
    getrandom::fill(buf).map_err(|e| failed(format!("reading random bytes: {e}")))
}

pub(crate) fn random_u64() -> Result<u64, FuncError> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// goutils `CryptoRandom` over an alphabet: uniform characters; a negative
/// count is sprig's ignored error (the empty string).
fn rand_chars(name: &str, a: &[Value], alphabet: &[u8]) -> FuncResult {
    let n = arg_int(a, 0)?;
    let Ok(n) = usize::try_from(n) else {
        return Ok(s(""));
    };
    check_len(name, n as u128)?;
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 256];
    let limit = 256 - 256 % alphabet.len();
    while out.len() < n {
        fill(&mut buf)?;
        for b in buf {
            if out.len() == n {
                break;
            }
            // Rejection sampling keeps the choice uniform.
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(s(out))
}

/// golang.org/x/crypto/bcrypt `GenerateFromPassword(p, DefaultCost)`; its
/// error (a password over 72 bytes) as sprig returns it, in the result.
fn bcrypt_hash(p: &str) -> String {
    if p.len() > 72 {
        return "failed to encrypt string with bcrypt: bcrypt: password length exceeds 72 bytes"
            .into();
    }
    match bcrypt::hash_with_result(p, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

const MASTER_SEED: &str = "com.lyndir.masterpassword";

fn templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

fn template_chars(c: u8) -> &'static str {
    match c {
        b'V' => "AEIOU",
        b'C' => "BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => "aeiou",
        b'c' => "bcdfghjklmnpqrstvwxyz",
        b'A' => "AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => "0123456789",
        b'o' => "@&%?,=[]_:-+*$#!'^~;()/.",
        _ => "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = sha2::Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = sha2::Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// sprig's `derivePassword(counter uint32, type, password, user, site)`.
fn derive_password(a: &[Value]) -> FuncResult {
    let counter = match &a[0] {
        Value::Int(n) => u32::try_from(*n).map_err(|_| FuncError::wrong_type("uint32", &a[0]))?,
        Value::Uint(n) => u32::try_from(*n).map_err(|_| FuncError::wrong_type("uint32", &a[0]))?,
        other => return Err(FuncError::wrong_type("uint32", other)),
    };
    let (kind, password, user, site) = (
        arg_str(a, 1)?,
        arg_str(a, 2)?,
        arg_str(a, 3)?,
        arg_str(a, 4)?,
    );
    let Some(temps) = templates(kind) else {
        return Ok(s(format!("cannot find password template {kind}")));
    };
    let mut salt = MASTER_SEED.as_bytes().to_vec();
    salt.extend_from_slice(&(user.len() as u32).to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut key = [0u8; 64];
    let params = scrypt::Params::new(15, 8, 2, 64)
        .map_err(|e| failed(format!("failed to derive password: {e}")))?;
    if let Err(e) = scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key) {
        return Ok(s(format!("failed to derive password: {e}")));
    }
    let mut msg = MASTER_SEED.as_bytes().to_vec();
    msg.extend_from_slice(&(site.len() as u32).to_be_bytes());
    msg.extend_from_slice(site.as_bytes());
    msg.extend_from_slice(&counter.to_be_bytes());
    let seed = hmac_sha256(&key, &msg);
    let temp = temps[usize::from(seed[0]) % temps.len()].as_bytes();
    let mut out = String::with_capacity(temp.len());
    for (i, c) in temp.iter().enumerate() {
        let chars = template_chars(*c).as_bytes();
        out.push(char::from(chars[usize::from(seed[i + 1]) % chars.len()]));
    }
    Ok(s(out))
}

fn aes_key(password: &str) -> aes::Aes256 {
    let mut key = [0u8; 32];
    let p = password.as_bytes();
    let n = p.len().min(32);
    key[..n].copy_from_slice(&p[..n]);
    aes::Aes256::new(&key.into())
}

/// sprig's `encryptAES`: AES-256-CBC with the password zero-padded (or
/// cut) to 32 bytes, PKCS#7 padding, a random IV first; base64.
fn encrypt_aes(a: &[Value]) -> FuncResult {
    let (password, plain) = (arg_str(a, 0)?, arg_str(a, 1)?);
    if plain.is_empty() {
        return Ok(s(""));
    }
    check_len("encryptAES", plain.len() as u128 * 2)?;
    let cipher = aes_key(password);
    let mut data = plain.as_bytes().to_vec();
    let pad = 16 - data.len() % 16;
    data.extend(std::iter::repeat_n(pad as u8, pad));
    let mut out = vec![0u8; 16];
    fill(&mut out)?;
    let mut prev: [u8; 16] = [0; 16];
    prev.copy_from_slice(&out);
    for chunk in data.chunks(16) {
        let mut block = [0u8; 16];
        for i in 0..16 {
            block[i] = chunk[i] ^ prev[i];
        }
        let mut b = block.into();
        cipher.encrypt_block(&mut b);
        prev.copy_from_slice(&b);
        out.extend_from_slice(&b);
    }
    Ok(s(BASE64.encode(&out)))
}

/// sprig's `decryptAES` (Go panics on short or unaligned input; that is
/// reported as the call's error here).
fn decrypt_aes(a: &[Value]) -> FuncResult {
    let (password, text) = (arg_str(a, 0)?, arg_str(a, 1)?);
    if text.is_empty() {
        return Ok(s(""));
    }
    let data = BASE64
        .decode(text.as_bytes())
        .map_err(|e| failed(format!("illegal base64 data at input byte {}", e.position)))?;
    if data.len() < 16 {
        return Err(failed("runtime error: slice bounds out of range [:16]"));
    }
    let (iv, body) = data.split_at(16);
    if body.len() % 16 != 0 {
        return Err(failed("crypto/cipher: input not full blocks"));
    }
    let cipher = aes_key(password);
    let mut prev: [u8; 16] = [0; 16];
    prev.copy_from_slice(iv);
    let mut out = Vec::with_capacity(body.len());
    for chunk in body.chunks(16) {
        let mut b = [0u8; 16];
        b.copy_from_slice(chunk);
        let mut block = b.into();
        cipher.decrypt_block(&mut block);
        for i in 0..16 {
            out.push(block[i] ^ prev[i]);
        }
        prev = b;
    }
    let pad = usize::from(out.last().copied().unwrap_or(0));
    if pad > out.len() {
        return Err(failed(format!(
            "runtime error: slice bounds out of range [:{}]",
            out.len() as i64 - pad as i64
        )));
    }
    out.truncate(out.len() - pad);
    Ok(s(String::from_utf8_lossy(&out).into_owned()))
}
