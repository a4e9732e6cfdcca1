//! Helm's `repo.ResolveReferenceURL`: a chart URL from an index, resolved
//! against the repository URL with Go's `net/url` rules (RFC 3986 reference
//! resolution, Go's dot-segment removal and escaping), the repository URL's
//! query kept (a token in it reaches the chart download too).

/// A URL split as Go's `url.Parse` splits it (only what resolution needs).
#[derive(Debug, Default, Clone, PartialEq)]
struct Url {
    scheme: String,
    /// `user@host:port` when the URL has `//`.
    authority: Option<String>,
    /// `scheme:opaque` (no `/` after the colon).
    opaque: String,
    /// The path, escaped as written.
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

fn parse(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut u = Url::default();
    let (rest, fragment) = match raw.split_once('#') {
        Some((r, f)) => (r, Some(f.to_string())),
        None => (raw, None),
    };
    u.fragment = fragment;
    // Scheme: a letter, then letters, digits, + - . up to ':'.
    let mut rest = rest;
    for (i, c) in rest.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if i > 0 && (c.is_ascii_digit() || c == '+' || c == '-' || c == '.') {
            continue;
        }
        if c == ':' {
            if i == 0 {
                return Err("missing protocol scheme".into());
            }
            u.scheme = rest[..i].to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
        break;
    }
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q.to_string())),
        None => (rest, None),
    };
    u.query = query;
    if !u.scheme.is_empty() && !rest.starts_with('/') {
        u.opaque = rest.to_string();
        return Ok(u);
    }
    if let Some(after) = rest
        .strip_prefix("//")
        .filter(|_| !rest.starts_with("///") || !u.scheme.is_empty())
    {
        let end = after.find('/').unwrap_or(after.len());
        u.authority = Some(after[..end].to_string());
        u.path = after[end..].to_string();
    } else {
        if u.scheme.is_empty() {
            // A colon in the first segment of a relative path would read as
            // a scheme: Go refuses it.
            let first = rest.split('/').next().unwrap_or("");
            if first.contains(':') {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        u.path = rest.to_string();
    }
    check_escapes(&u.path)?;
    Ok(u)
}

fn check_escapes(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                let end = (i + 3).min(b.len());
                let shown = String::from_utf8_lossy(&b[i..end]);
                return Err(format!("invalid URL escape {shown:?}"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Go's path escaping for what `url.Parse` left unescaped.
fn escape_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        let keep = c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '_'
                    | '.'
                    | '~'
                    | '$'
                    | '&'
                    | '+'
                    | ','
                    | '/'
                    | ':'
                    | ';'
                    | '='
                    | '@'
                    | '%'
                    | '!'
                    | '\''
                    | '('
                    | ')'
                    | '*'
            );
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Go's `resolvePath` (RFC 3986 section 5.2 with Go's dot-segment removal).
fn resolve_path(base: &str, reference: &str) -> String {
    let full = if reference.is_empty() {
        base.to_string()
    } else if !reference.starts_with('/') {
        let i = base.rfind('/').map(|i| i + 1).unwrap_or(0);
        format!("{}{reference}", &base[..i])
    } else {
        reference.to_string()
    };
    if full.is_empty() {
        return String::new();
    }
    let mut dst = String::from("/");
    let mut first = true;
    let mut last = "";
    let parts: Vec<&str> = full.split('/').collect();
    for elem in &parts {
        last = elem;
        if *elem == "." {
            first = false;
            continue;
        }
        if *elem == ".." {
            let s = dst[1..].to_string();
            dst = String::from("/");
            match s.rfind('/') {
                None => first = true,
                Some(i) => dst.push_str(&s[..i]),
            }
        } else {
            if !first {
                dst.push('/');
            }
            dst.push_str(elem);
            first = false;
        }
    }
    if last == "." || last == ".." {
        dst.push('/');
    }
    if dst.len() > 1 && dst.as_bytes()[1] == b'/' {
        dst.remove(0);
    }
    dst
}

fn to_string(u: &Url) -> String {
    let mut out = String::new();
    if !u.scheme.is_empty() {
        out.push_str(&u.scheme);
        out.push(':');
    }
    if !u.opaque.is_empty() {
        out.push_str(&u.opaque);
    } else {
        if let Some(a) = &u.authority
            && (!a.is_empty() || !u.path.is_empty())
        {
            out.push_str("//");
            out.push_str(a);
        }
        let path = escape_path(&u.path);
        if !path.is_empty()
            && !path.starts_with('/')
            && u.authority.as_deref().is_some_and(|a| !a.is_empty())
        {
            out.push('/');
        }
        out.push_str(&path);
    }
    if let Some(q) = &u.query
        && !q.is_empty()
    {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = &u.fragment
        && !f.is_empty()
    {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Helm's `ResolveReferenceURL(baseURL, refURL)`: an absolute `reference`
/// is returned unchanged; a relative one is resolved against `base` (as a
/// directory: a trailing `/` is implied) and gets `base`'s query.
pub fn resolve_reference_url(base: &str, reference: &str) -> Result<String, String> {
    let r = parse(reference).map_err(|e| format!("failed to parse {reference} as URL: {e}"))?;
    if !r.scheme.is_empty() {
        return Ok(reference.to_string());
    }
    let mut b = parse(base).map_err(|e| format!("failed to parse {base} as URL: {e}"))?;
    b.path = format!("{}/", b.path.trim_end_matches('/'));
    let mut out = r.clone();
    out.scheme = b.scheme.clone();
    if r.authority.is_some() {
        out.path = resolve_path(&r.path, "");
    } else {
        out.authority = b.authority.clone();
        out.path = resolve_path(&b.path, &r.path);
        if r.path.is_empty() && r.fragment.is_none() {
            out.fragment = b.fragment.clone();
        }
    }
    out.query = b.query.clone();
    Ok(to_string(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helms_cases() {
        // Helm's TestResolveReferenceURL table, in our words.
        let cases = [
            (
                "http://localhost:8123/",
                "/nginx-0.2.0.tgz",
                "http://localhost:8123/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123/charts/",
                "nginx-0.2.0.tgz",
                "http://localhost:8123/charts/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123/charts/",
                "/nginx-0.2.0.tgz",
                "http://localhost:8123/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123/charts-with-no-trailing-slash",
                "nginx-0.2.0.tgz",
                "http://localhost:8123/charts-with-no-trailing-slash/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123",
                "https://charts.helm.sh/stable/nginx-0.2.0.tgz",
                "https://charts.helm.sh/stable/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123/charts%2fwith%2fescaped%2fslash",
                "nginx-0.2.0.tgz",
                "http://localhost:8123/charts%2fwith%2fescaped%2fslash/nginx-0.2.0.tgz",
            ),
            (
                "http://localhost:8123/charts?with=queryparameter",
                "nginx-0.2.0.tgz",
                "http://localhost:8123/charts/nginx-0.2.0.tgz?with=queryparameter",
            ),
            (
                "http://localhost:8123/",
                "../nginx-0.2.0.tgz",
                "http://localhost:8123/nginx-0.2.0.tgz",
            ),
            (
                "https://example.com/a/b/",
                "../../c/d.tgz",
                "https://example.com/c/d.tgz",
            ),
            (
                "https://example.com/repo",
                "//cdn.example.com/x.tgz",
                "https://cdn.example.com/x.tgz",
            ),
            (
                "https://example.com/repo?token=t",
                "x.tgz?other=1",
                "https://example.com/repo/x.tgz?token=t",
            ),
        ];
        for (base, reference, want) in cases {
            assert_eq!(
                resolve_reference_url(base, reference).unwrap(),
                want,
                "{base} + {reference}"
            );
        }
        assert!(resolve_reference_url("https://example.com", "%zz.tgz").is_err());
        assert!(resolve_reference_url("https://example.com", ":x").is_err());
        assert!(resolve_reference_url("https://example.com", "%中.tgz").is_err());
    }
}
