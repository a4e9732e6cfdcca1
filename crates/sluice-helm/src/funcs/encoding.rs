//! sprig's encodings and digests: `b64enc`/`b64dec`, `b32enc`/`b32dec`
//! (Go's `StdEncoding`: padded; a decoding error is returned as the
//! result text, as sprig does), `sha1sum`, `sha256sum`, `sha512sum`
//! (hex), `adler32sum` (decimal).

use data_encoding::{BASE32, BASE64};
use sha1::Digest as _;

use super::{Spec, Value, arg_str, check_len, s, spec};

pub(super) const FUNCS: &[Spec] = &[
    spec!("b64enc", 1, Some(1), |a| {
        let v = arg_text(a, 0)?;
        check_len("b64enc", v.len() as u128 * 4 / 3 + 4)?;
        Ok(s(BASE64.encode(v)))
    }),
    spec!("b64dec", 1, Some(1), |a| Ok(s(decode(
        &BASE64,
        arg_str(a, 0)?,
        "base64"
    )))),
    spec!("b32enc", 1, Some(1), |a| {
        let v = arg_text(a, 0)?;
        check_len("b32enc", v.len() as u128 * 8 / 5 + 8)?;
        Ok(s(BASE32.encode(v)))
    }),
    spec!("b32dec", 1, Some(1), |a| Ok(s(decode(
        &BASE32,
        arg_str(a, 0)?,
        "base32"
    )))),
    spec!("sha1sum", 1, Some(1), |a| {
        Ok(s(hex(&sha1::Sha1::digest(arg_text(a, 0)?))))
    }),
    spec!("sha256sum", 1, Some(1), |a| {
        Ok(s(hex(&sha2::Sha256::digest(arg_text(a, 0)?))))
    }),
    spec!("sha512sum", 1, Some(1), |a| {
        Ok(s(hex(&sha2::Sha512::digest(arg_text(a, 0)?))))
    }),
    spec!("adler32sum", 1, Some(1), |a| {
        Ok(s(adler32(arg_text(a, 0)?).to_string()))
    }),
];

/// A Go `string` parameter as bytes. A string that is not UTF-8 (a
/// binary chart file read with `.Files.Get`) reaches functions as
/// [`Value::Bytes`]; the encoders and digests take it as Go takes the
/// string's bytes.
fn arg_text(a: &[Value], i: usize) -> Result<&[u8], crate::template::FuncError> {
    match a.get(i) {
        Some(Value::Bytes(b)) => Ok(b),
        _ => arg_str(a, i).map(str::as_bytes),
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        out.push(H[usize::from(x >> 4)] as char);
        out.push(H[usize::from(x & 15)] as char);
    }
    out
}

fn adler32(b: &[u8]) -> u32 {
    let (mut a, mut s2) = (1u32, 0u32);
    for chunk in b.chunks(5552) {
        for x in chunk {
            a += u32::from(*x);
            s2 += a;
        }
        a %= 65521;
        s2 %= 65521;
    }
    (s2 << 16) | a
}

/// Go's `DecodeString` of a standard (padded) encoding: `\r` and `\n` are
/// skipped; an error reads `illegal base64 data at input byte N`. The
/// decoded bytes are returned as a string (invalid UTF-8 replaced).
fn decode(enc: &data_encoding::Encoding, v: &str, name: &str) -> String {
    let clean: Vec<u8> = v.bytes().filter(|b| *b != b'\r' && *b != b'\n').collect();
    match enc.decode(&clean) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            // Map the position back to the input with newlines.
            let mut pos = e.position;
            let mut seen = 0;
            for (i, b) in v.bytes().enumerate() {
                if b == b'\r' || b == b'\n' {
                    continue;
                }
                if seen == e.position {
                    pos = i;
                    break;
                }
                seen += 1;
            }
            format!("illegal {name} data at input byte {pos}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler_like_go() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }
}
