//! sprig's paths: Go's `path` (`base`, `dir`, `clean`, `ext`, `isAbs`) and
//! `path/filepath` (`osBase`, ...: the same on Linux).

use super::{Spec, Value, arg_str, s, spec};

pub(super) const FUNCS: &[Spec] = &[
    spec!("base", 1, Some(1), |a| Ok(s(base(arg_str(a, 0)?)))),
    spec!("dir", 1, Some(1), |a| Ok(s(dir(arg_str(a, 0)?)))),
    spec!("clean", 1, Some(1), |a| Ok(s(clean(arg_str(a, 0)?)))),
    spec!("ext", 1, Some(1), |a| Ok(s(ext(arg_str(a, 0)?)))),
    spec!("isAbs", 1, Some(1), |a| Ok(Value::Bool(
        arg_str(a, 0)?.starts_with('/')
    ))),
    spec!("osBase", 1, Some(1), |a| Ok(s(base(arg_str(a, 0)?)))),
    spec!("osDir", 1, Some(1), |a| Ok(s(dir(arg_str(a, 0)?)))),
    spec!("osClean", 1, Some(1), |a| Ok(s(clean(arg_str(a, 0)?)))),
    spec!("osExt", 1, Some(1), |a| Ok(s(ext(arg_str(a, 0)?)))),
    spec!("osIsAbs", 1, Some(1), |a| Ok(Value::Bool(
        arg_str(a, 0)?.starts_with('/')
    ))),
];

/// Go's `path.Clean`.
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    match t.rfind('/') {
        Some(i) => t[i + 1..].to_string(),
        None => t.to_string(),
    }
}

/// Go's `path.Dir`.
fn dir(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    clean(&p[..i])
}

/// Go's `path.Ext`.
fn ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path() {
        for (i, o) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def/", "abc/def"),
            ("a//c", "a/c"),
            ("abc/./def", "abc/def"),
            ("abc/../../x", "../x"),
            ("/../a", "/a"),
            ("/", "/"),
            ("../../", "../.."),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("///"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("a"), ".");
        assert_eq!(dir("/"), "/");
        assert_eq!(ext("a/b.tar.gz"), ".gz");
        assert_eq!(ext("a.b/c"), "");
    }
}
