//! The Go objects Helm puts in front of templates: `.Files` (Helm's
//! `engine.files`, a map type with methods) and `.Capabilities` (with its
//! `KubeVersion`, `APIVersions` and `HelmVersion`).

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use data_encoding::BASE64;

use crate::chart::Data;
use crate::template::{FuncError, Object, Value};

/// Helm's `files`: chart files by path, with `Get`, `GetBytes`, `Glob`,
/// `Lines`, `AsConfig`, `AsSecrets`. A packed chart's file is inflated each
/// time a template reads it.
pub(crate) struct Files(pub BTreeMap<String, Data>);

impl Files {
    fn get_bytes(&self, name: &str) -> Arc<[u8]> {
        self.0
            .get(name)
            .map(Data::shared)
            .unwrap_or_else(|| Arc::from(&[][..]))
    }
    fn yaml_of(&self, f: impl Fn(&[u8]) -> String) -> Value {
        // Go's map keyed by path.Base: later paths of one base name win.
        let mut m = BTreeMap::new();
        for (k, v) in &self.0 {
            let base = k.rsplit('/').next().unwrap_or(k).to_string();
            m.insert(base, Value::String(f(&v.bytes())));
            v.release();
        }
        if m.is_empty() {
            return Value::string("{}");
        }
        match crate::funcs::serial::to_yaml_string(&Value::map(m)) {
            Ok(s) => Value::String(s),
            Err(_) => Value::string(""),
        }
    }
}

fn str_arg<'v>(method: &str, args: &'v [Value]) -> Result<&'v str, FuncError> {
    match args {
        [Value::String(s)] => Ok(s),
        [x] => Err(FuncError::wrong_type("string", x)),
        _ => Err(FuncError::arity(method, 1, args.len())),
    }
}

impl Object for Files {
    fn type_name(&self) -> &str {
        "engine.files"
    }
    fn field(&self, name: &str) -> Option<Value> {
        // A map type: `.Files.x` is the key x (no value when absent).
        Some(
            self.0
                .get(name)
                .map(|b| Value::Bytes(b.shared()))
                .unwrap_or(Value::Nil),
        )
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Get" | "GetBytes" | "Glob" | "Lines" | "AsConfig" | "AsSecrets"
        )
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let r = match method {
            // Go's string(bytes); bytes that are not UTF-8 stay bytes (the
            // encoders and digests take them as Go's string).
            "Get" => str_arg(method, args).map(|n| match self.0.get(n) {
                None => Value::string(""),
                Some(data) => {
                    // Copied once, from where the bytes lie (a mapped file's pages
                    // are let go of after).
                    let b = data.bytes();
                    let v = match std::str::from_utf8(&b) {
                        Ok(t) => Value::string(t),
                        Err(_) => Value::Bytes(match b {
                            Cow::Owned(o) => o.into(),
                            Cow::Borrowed(_) => data.shared(),
                        }),
                    };
                    data.release();
                    v
                }
            }),
            "GetBytes" => str_arg(method, args).map(|n| Value::Bytes(self.get_bytes(n))),
            "Glob" => str_arg(method, args).map(|p| {
                let pats = glob::compile(p).unwrap_or_else(|| vec![glob::any()]);
                let picked = self
                    .0
                    .iter()
                    .filter(|(k, _)| pats.iter().any(|g| glob::matches(g, k)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::object(Files(picked))
            }),
            "Lines" => str_arg(method, args).map(|n| match self.0.get(n) {
                None => Value::list(Vec::new()),
                Some(data) => {
                    let b = data.bytes();
                    let s = String::from_utf8_lossy(&b);
                    let s = s.strip_suffix('\n').unwrap_or(&s);
                    let lines = Value::list(s.split('\n').map(Value::string).collect());
                    data.release();
                    lines
                }
            }),
            "AsConfig" if args.is_empty() => {
                Ok(self.yaml_of(|b| String::from_utf8_lossy(b).into_owned()))
            }
            "AsSecrets" if args.is_empty() => Ok(self.yaml_of(|b| BASE64.encode(b))),
            "AsConfig" | "AsSecrets" => Err(FuncError::arity(method, 0, args.len())),
            _ => return None,
        };
        Some(r)
    }
    fn display(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                let bytes: Vec<String> = v.bytes().iter().map(|b| b.to_string()).collect();
                format!("{k}:[{}]", bytes.join(" "))
            })
            .collect();
        format!("map[{}]", items.join(" "))
    }
    fn to_value(&self) -> Option<Value> {
        Some(Value::map(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::Bytes(v.shared())))
                .collect(),
        ))
    }
    fn range_entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| (Value::string(k.as_str()), Value::Bytes(v.shared())))
                .collect(),
        )
    }
    fn len(&self) -> Option<usize> {
        Some(self.0.len())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `.Capabilities.KubeVersion`: `Version`, `Major`, `Minor`, printed as its
/// normalized version (`String()`), `GitVersion()`.
pub(crate) struct KubeVersion {
    pub version: String,
    pub normalized: String,
    pub major: String,
    pub minor: String,
}

impl KubeVersion {
    /// Helm's `ParseKubeVersion` (`k8s.io/apimachinery`'s `ParseGeneric`):
    /// `v1.36.3`, `1.36`, `1.36.3-k3s1`.
    pub fn parse(input: &str) -> Result<KubeVersion, String> {
        let bad = || format!("could not parse {input:?} as version");
        let s = input.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (nums, rest) = s.split_at(end);
        let parts: Vec<&str> = nums.split('.').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        if !rest.is_empty() && !rest.starts_with(['-', '+']) {
            return Err(bad());
        }
        let n: Vec<u64> = parts
            .iter()
            .map(|p| p.parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let mut normalized = format!("v{}.{}.{}", n[0], n[1], n.get(2).copied().unwrap_or(0));
        if !rest.is_empty() && parts.len() == 3 {
            normalized.push_str(rest);
        }
        let version = if input.starts_with('v') {
            input.to_string()
        } else {
            format!("v{input}")
        };
        Ok(KubeVersion {
            version,
            normalized,
            major: n[0].to_string(),
            minor: n[1].to_string(),
        })
    }
}

impl Object for KubeVersion {
    fn type_name(&self) -> &str {
        "common.KubeVersion"
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(Value::string(match name {
            "Version" => self.version.as_str(),
            "Major" => self.major.as_str(),
            "Minor" => self.minor.as_str(),
            _ => return None,
        }))
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(name, "String" | "GitVersion")
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let out = match method {
            "String" => &self.normalized,
            "GitVersion" => &self.version,
            _ => return None,
        };
        if !args.is_empty() {
            return Some(Err(FuncError::arity(method, 0, args.len())));
        }
        Some(Ok(Value::string(out.as_str())))
    }
    fn display(&self) -> String {
        self.normalized.clone()
    }
    fn to_value(&self) -> Option<Value> {
        Some(Value::map(BTreeMap::from([
            ("Version".to_string(), Value::string(self.version.as_str())),
            ("Major".to_string(), Value::string(self.major.as_str())),
            ("Minor".to_string(), Value::string(self.minor.as_str())),
        ])))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `.Capabilities.APIVersions`: Helm's `VersionSet` (a `[]string` with
/// `Has`).
pub(crate) struct VersionSet(pub Vec<String>);

impl Object for VersionSet {
    fn type_name(&self) -> &str {
        "common.VersionSet"
    }
    fn kind(&self) -> &str {
        "slice"
    }
    fn field(&self, _: &str) -> Option<Value> {
        None
    }
    fn has_method(&self, name: &str) -> bool {
        name == "Has"
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        if method != "Has" {
            return None;
        }
        Some(str_arg(method, args).map(|v| Value::Bool(self.0.iter().any(|x| x == v))))
    }
    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }
    fn to_value(&self) -> Option<Value> {
        Some(Value::list(
            self.0.iter().map(|s| Value::string(s.as_str())).collect(),
        ))
    }
    fn range_entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::string(s.as_str())))
                .collect(),
        )
    }
    fn len(&self) -> Option<usize> {
        Some(self.0.len())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `.Capabilities`.
pub(crate) struct Capabilities {
    pub kube_version: Value,
    pub api_versions: Value,
    pub helm_version: Value,
}

impl Object for Capabilities {
    fn type_name(&self) -> &str {
        "*common.Capabilities"
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "KubeVersion" => self.kube_version.clone(),
            "APIVersions" => self.api_versions.clone(),
            "HelmVersion" => self.helm_version.clone(),
            _ => return None,
        })
    }
    fn to_value(&self) -> Option<Value> {
        let plain = |v: &Value| match v {
            Value::Object(o) => o.to_value().unwrap_or(Value::Nil),
            other => other.clone(),
        };
        Some(Value::map(BTreeMap::from([
            ("KubeVersion".to_string(), plain(&self.kube_version)),
            ("APIVersions".to_string(), plain(&self.api_versions)),
            ("HelmVersion".to_string(), plain(&self.helm_version)),
        ])))
    }
    fn display(&self) -> String {
        let show = |v: &Value| match v {
            Value::Object(o) => o.display(),
            other => other.to_string(),
        };
        format!(
            "&{{{} {} {}}}",
            show(&self.kube_version),
            show(&self.api_versions),
            show(&self.helm_version)
        )
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// gobwas/glob with `/` as the separator, as Helm's `Files.Glob` compiles
/// patterns: `*` and `?` stop at `/`, `**` does not, `[...]`, `[!...]`,
/// `{a,b}`, `\` escapes.
pub(crate) mod glob {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Tok {
        Lit(char),
        Any,
        Super,
        One,
        Class(bool, Vec<(char, char)>),
    }

    pub fn any() -> Vec<Tok> {
        vec![Tok::Super]
    }

    /// The pattern as alternatives without braces; `None` when it does not
    /// compile (Helm then matches everything).
    pub fn compile(p: &str) -> Option<Vec<Vec<Tok>>> {
        let chars: Vec<char> = p.chars().collect();
        let alts = expand(&chars)?;
        alts.iter().map(|a| tokens(a)).collect()
    }

    fn expand(p: &[char]) -> Option<Vec<Vec<char>>> {
        // Find the first top-level `{`.
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                '\\' => i += 2,
                '[' => {
                    while i < p.len() && p[i] != ']' {
                        i += 1;
                    }
                    i += 1;
                }
                '{' => {
                    let mut depth = 0;
                    let mut parts = Vec::new();
                    let mut start = i + 1;
                    let mut j = i;
                    while j < p.len() {
                        match p[j] {
                            '\\' => j += 1,
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    parts.push(&p[start..j]);
                                    break;
                                }
                            }
                            ',' if depth == 1 => {
                                parts.push(&p[start..j]);
                                start = j + 1;
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    if j >= p.len() {
                        return None;
                    }
                    let mut out = Vec::new();
                    for part in parts {
                        let mut whole = p[..i].to_vec();
                        whole.extend_from_slice(part);
                        whole.extend_from_slice(&p[j + 1..]);
                        out.extend(expand(&whole)?);
                    }
                    return Some(out);
                }
                '}' | ',' => i += 1,
                _ => i += 1,
            }
        }
        Some(vec![p.to_vec()])
    }

    fn tokens(p: &[char]) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                '\\' => {
                    out.push(Tok::Lit(*p.get(i + 1)?));
                    i += 2;
                }
                '*' if p.get(i + 1) == Some(&'*') => {
                    out.push(Tok::Super);
                    i += 2;
                }
                '*' => {
                    out.push(Tok::Any);
                    i += 1;
                }
                '?' => {
                    out.push(Tok::One);
                    i += 1;
                }
                '[' => {
                    let mut j = i + 1;
                    let neg = p.get(j) == Some(&'!');
                    if neg {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    while j < p.len() && p[j] != ']' {
                        let lo = p[j];
                        if p.get(j + 1) == Some(&'-') && p.get(j + 2).is_some_and(|c| *c != ']') {
                            ranges.push((lo, p[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((lo, lo));
                            j += 1;
                        }
                    }
                    if j >= p.len() {
                        return None;
                    }
                    out.push(Tok::Class(neg, ranges));
                    i = j + 1;
                }
                c => {
                    out.push(Tok::Lit(c));
                    i += 1;
                }
            }
        }
        Some(out)
    }

    pub fn matches(pat: &[Tok], s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        // Iterative DP over (pattern, text) positions.
        let (n, m) = (pat.len(), chars.len());
        let mut cur = vec![false; m + 1];
        cur[0] = true;
        for tok in pat {
            let mut next = vec![false; m + 1];
            match tok {
                Tok::Any | Tok::Super => {
                    let mut reach = false;
                    for j in 0..=m {
                        if cur[j] {
                            reach = true;
                        }
                        next[j] = reach;
                        if j < m && *tok == Tok::Any && chars[j] == '/' {
                            reach = false;
                        }
                    }
                }
                _ => {
                    for j in 0..m {
                        if cur[j] && one(tok, chars[j]) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            cur = next;
        }
        let _ = n;
        cur[m]
    }

    fn one(tok: &Tok, c: char) -> bool {
        match tok {
            Tok::Lit(l) => *l == c,
            Tok::One => c != '/',
            Tok::Class(neg, ranges) => {
                let hit = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                hit != *neg
            }
            Tok::Any | Tok::Super => true,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn m(p: &str, s: &str) -> bool {
            compile(p).unwrap().iter().any(|g| matches(g, s))
        }

        #[test]
        fn gobwas_semantics_with_slash_separator() {
            assert!(m("files/*", "files/a.txt"));
            assert!(!m("files/*", "files/sub/a.txt"));
            assert!(m("files/**", "files/sub/a.txt"));
            assert!(m("**.yaml", "a/b/c.yaml"));
            assert!(m("*.{yaml,json}", "x.json"));
            assert!(!m("*.{yaml,json}", "x.txt"));
            assert!(m("f?le", "file"));
            assert!(!m("f?le", "f/le"));
            assert!(m("[a-c]x", "bx"));
            assert!(!m("[!a-c]x", "bx"));
            assert!(m("dashboards/*.json", "dashboards/k8s.json"));
        }
    }
}
