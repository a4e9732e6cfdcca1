//! sprig's `urlParse` and `urlJoin` over Go's `net/url` rules (the parts
//! these two functions see: scheme, opaque, userinfo, host, path, raw
//! query, fragment). `urlquery` is a text/template builtin (the engine's).

use std::collections::BTreeMap;

use super::{FuncResult, Spec, Value, arg_map, arg_str, failed, s, spec};

pub(super) const FUNCS: &[Spec] = &[
    spec!("urlParse", 1, Some(1), url_parse),
    spec!("urlJoin", 1, Some(1), url_join),
];

struct Url {
    scheme: String,
    opaque: String,
    user: Option<String>,
    host: String,
    path: String,
    raw_query: String,
    fragment: String,
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Go's `url.PathUnescape` / fragment unescaping: `%XX` decoded.
fn unescape(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| unhex(*c)),
                b.get(i + 2).and_then(|c| unhex(*c)),
            ) else {
                let end = (i + 3).min(b.len());
                return Err(format!(
                    "invalid URL escape {}",
                    super::go::quote(&String::from_utf8_lossy(&b[i..end]))
                ));
            };
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    Host,
    Fragment,
    User,
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host {
        return !matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
        );
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::User => matches!(c, b'@' | b'/' | b'?' | b':'),
            _ => false,
        },
        b'!' | b'(' | b')' | b'*' if mode == Mode::Fragment => false,
        _ => true,
    }
}

fn escape(v: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(v.len());
    for &c in v.as_bytes() {
        if should_escape(c, mode) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

fn parse(raw: &str) -> Result<Url, String> {
    let (rest, frag) = match raw.split_once('#') {
        Some((r, f)) => (r, unescape(f)?),
        None => (raw, String::new()),
    };
    let mut u = Url {
        scheme: String::new(),
        opaque: String::new(),
        user: None,
        host: String::new(),
        path: String::new(),
        raw_query: String::new(),
        fragment: frag,
    };
    let mut rest = rest;
    // Scheme: a letter, then letters, digits, '+', '-', '.', then ':'.
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        let ok = cand.bytes().enumerate().all(|(j, c)| {
            c.is_ascii_alphabetic()
                || (j > 0 && (c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')))
        });
        if i == 0 {
            return Err("missing protocol scheme".into());
        }
        if ok {
            u.scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    if let Some((r, q)) = rest.split_once('?') {
        u.raw_query = q.to_string();
        rest = r;
    }
    if !rest.starts_with('/') && !u.scheme.is_empty() {
        u.opaque = rest.to_string();
        return Ok(u);
    }
    if rest.starts_with("//") {
        let auth_end = rest[2..].find('/').map_or(rest.len(), |i| i + 2);
        let authority = &rest[2..auth_end];
        rest = &rest[auth_end..];
        let host = match authority.rfind('@') {
            Some(i) => {
                u.user = Some(authority[..i].to_string());
                &authority[i + 1..]
            }
            None => authority,
        };
        u.host = unescape(host)?;
    }
    u.path = unescape(rest)?;
    Ok(u)
}

fn hostname(host: &str) -> String {
    if let Some(h) = host.strip_prefix('[') {
        return h.split(']').next().unwrap_or("").to_string();
    }
    match host.rfind(':') {
        Some(i) => host[..i].to_string(),
        None => host.to_string(),
    }
}

/// Go's `Userinfo.String()` of a parsed userinfo.
fn user_string(raw: &str) -> Result<String, String> {
    let (name, pass) = match raw.split_once(':') {
        Some((n, p)) => (unescape(n)?, Some(unescape(p)?)),
        None => (unescape(raw)?, None),
    };
    let mut out = escape(&name, Mode::User);
    if let Some(p) = pass {
        out.push(':');
        out.push_str(&escape(&p, Mode::User));
    }
    Ok(out)
}

fn url_parse(a: &[Value]) -> FuncResult {
    let raw = arg_str(a, 0)?;
    let u = parse(raw).map_err(|e| {
        failed(format!(
            "unable to parse url: parse {}: {e}",
            super::go::quote(raw)
        ))
    })?;
    let mut m = BTreeMap::new();
    m.insert("scheme".to_string(), s(&u.scheme));
    m.insert("host".to_string(), s(&u.host));
    m.insert("hostname".to_string(), s(hostname(&u.host)));
    m.insert("path".to_string(), s(&u.path));
    m.insert("query".to_string(), s(&u.raw_query));
    m.insert("opaque".to_string(), s(&u.opaque));
    m.insert("fragment".to_string(), s(&u.fragment));
    let user = match &u.user {
        Some(raw) => user_string(raw).map_err(failed)?,
        None => String::new(),
    };
    m.insert("userinfo".to_string(), s(user));
    Ok(Value::map(m))
}

fn url_join(a: &[Value]) -> FuncResult {
    let d = arg_map(a, 0)?;
    let get = |k: &str| -> Result<String, crate::template::FuncError> {
        match d.get(k) {
            None => Ok(String::new()),
            Some(Value::String(v)) => Ok(v),
            Some(other) => Err(failed(format!(
                "unable to parse {k} key, must be of type string, but {} found",
                other.kind_name()
            ))),
        }
    };
    let (scheme, host, path, query, opaque, fragment, userinfo) = (
        get("scheme")?,
        get("host")?,
        get("path")?,
        get("query")?,
        get("opaque")?,
        get("fragment")?,
        get("userinfo")?,
    );
    let user = if userinfo.is_empty() {
        None
    } else {
        Some(
            user_string(&userinfo)
                .map_err(|e| failed(format!("unable to parse userinfo in dict: {e}")))?,
        )
    };
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || user.is_some() {
            if !host.is_empty() || !path.is_empty() || user.is_some() {
                out.push_str("//");
            }
            if let Some(u) = &user {
                out.push_str(u);
                out.push('@');
            }
            out.push_str(&escape(&host, Mode::Host));
        }
        let p = escape(&path, Mode::Path);
        if !p.is_empty() && !p.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        if out.is_empty() && p.split('/').next().is_some_and(|seg| seg.contains(':')) {
            out.push_str("./");
        }
        out.push_str(&p);
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&escape(&fragment, Mode::Fragment));
    }
    Ok(s(out))
}
