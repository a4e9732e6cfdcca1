//! Values and the small Go behaviours around them: values files read and
//! merged as Helm and Flux merge them, values written as
//! `sigs.k8s.io/yaml.Marshal` writes them, Helm's chart versions (Masterminds
//! `NewVersion`), and the RFC 3339 times of `Chart.lock` and `index.yaml`.

use sluice_kustomize::yaml::{Map, Value, to_yaml};

use crate::yaml::{YamlError, non_finite, numbers_as_float, parse_docs, parse_first};

/// Why values could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValuesError {
    #[error("error converting YAML to JSON: {0}")]
    Yaml(#[from] YamlError),
    /// `sigs.k8s.io/yaml` v1.6.0's words (Helm v4.2.4's, and so Flux's).
    #[error(
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {0} into Go value of type map[string]interface {{}}"
    )]
    NotAMap(&'static str),
    /// A document of a values file Helm's `LoadValues` reads could not be.
    #[error("cannot unmarshal yaml document: {0}")]
    Document(Box<ValuesError>),
    #[error("error converting YAML to JSON: json: unsupported value: {0}")]
    NonFinite(String),
    #[error("invalid UTF-8")]
    Utf8,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Seq(_) => "array",
        Value::Str(_) => "string",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Map(_) => "object",
        Value::Null => "null",
    }
}

fn as_values(doc: Value) -> Result<Map, ValuesError> {
    let mut doc = doc;
    if let Some(f) = non_finite(&doc) {
        let shown = if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        return Err(ValuesError::NonFinite(shown.into()));
    }
    numbers_as_float(&mut doc);
    match doc {
        Value::Null => Ok(Map::new()),
        Value::Map(m) => Ok(m),
        other => Err(ValuesError::NotAMap(kind(&other))),
    }
}

/// A values file as `yaml.Unmarshal(data, &map[string]interface{})` reads
/// it (Flux's values files): the first document; numbers as float64.
pub fn parse_values_file(data: &[u8]) -> Result<Map, ValuesError> {
    let text = std::str::from_utf8(data).map_err(|_| ValuesError::Utf8)?;
    as_values(parse_first(text)?)
}

/// A chart's `values.yaml` as Helm's `LoadValues` reads it: every document,
/// merged in order.
pub fn load_values(data: &[u8]) -> Result<Map, ValuesError> {
    let text = std::str::from_utf8(data).map_err(|_| ValuesError::Utf8)?;
    let mut out = Map::new();
    let document = |e: ValuesError| ValuesError::Document(Box::new(e));
    for doc in parse_docs(text).map_err(|e| document(e.into()))? {
        out = merge_maps(out, as_values(doc).map_err(document)?);
    }
    Ok(out)
}

/// Helm's and Flux's `MergeMaps`: `b` over `a`; where both hold a map the
/// maps merge, anything else from `b` replaces (a `null` included).
pub fn merge_maps(a: Map, b: Map) -> Map {
    let mut out = a;
    for (k, v) in b.0 {
        match (out.get_mut(&k), v) {
            (Some(Value::Map(existing)), Value::Map(incoming)) => {
                let merged = merge_maps(std::mem::take(existing), incoming);
                *existing = merged;
            }
            (_, v) => out.insert(k, v),
        }
    }
    out
}

/// Helm's `chartutil.CoalesceTables(dst, src)`: `src` fills in what `dst` lacks, maps
/// coalescing key by key; a `null` in `dst` deletes that key from the result (Helm's upgrade
/// with `--reuse-values`, Flux's `upgrade.preserveValues`, uses it).
pub fn coalesce_tables(dst: Map, src: Map) -> Map {
    let (mut dst, mut src) = (dst, src);
    crate::render::coalesce::coalesce_tables(&mut dst, &mut src, false);
    dst
}

/// Values written as `sigs.k8s.io/yaml.Marshal` writes a
/// `map[string]interface{}` (sorted keys, go-yaml v2 quoting and folding).
pub fn encode_values(values: &Map) -> String {
    to_yaml(&Value::Map(values.clone()))
}

// ---------------------------------------------------------------------------
// Versions, as Masterminds semver v3 `NewVersion` reads them (Helm's chart
// version check, Flux's version metadata).
// ---------------------------------------------------------------------------

/// A chart version as Masterminds `NewVersion` parses it: an optional `v`,
/// missing minor and patch are 0, leading zeros tolerated in the numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartSemver {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub metadata: String,
}

impl std::fmt::Display for ChartSemver {
    /// Masterminds `Version.String()`: `X.Y.Z[-pre][+meta]`, no `v`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn ident_ok(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Masterminds' build metadata rule: dot-separated non-empty `[0-9A-Za-z-]`.
pub fn valid_metadata(m: &str) -> bool {
    m.split('.').all(ident_ok)
}

fn valid_prerelease(p: &str) -> bool {
    p.split('.').all(|id| {
        ident_ok(id)
            && !(id.bytes().all(|b| b.is_ascii_digit()) && id.len() > 1 && id.starts_with('0'))
    })
}

/// Masterminds `NewVersion` (with its default coercion).
pub fn parse_version(v: &str) -> Option<ChartSemver> {
    if v.len() > 256 {
        return None;
    }
    let s = v.strip_prefix('v').unwrap_or(v);
    let (s, metadata) = match s.split_once('+') {
        Some((a, m)) => (a, m),
        None => (s, ""),
    };
    let (core, pre) = match s.split_once('-') {
        Some((a, p)) => (a, p),
        None => (s, ""),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.is_empty() || nums.len() > 3 {
        return None;
    }
    let mut parsed = [0u64; 3];
    for (i, n) in nums.iter().enumerate() {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parsed[i] = n.parse().ok()?;
    }
    if s.contains('+') || (v.contains('+') && metadata.is_empty()) {
        return None;
    }
    if (s.contains('-') && pre.is_empty()) || (!pre.is_empty() && !valid_prerelease(pre)) {
        return None;
    }
    if (!metadata.is_empty() || v.ends_with('+')) && !valid_metadata(metadata) {
        return None;
    }
    Some(ChartSemver {
        major: parsed[0],
        minor: parsed[1],
        patch: parsed[2],
        pre: pre.to_string(),
        metadata: metadata.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------

/// Go's zero `time.Time` as RFC 3339.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A time as Go's JSON decoding accepts it (RFC 3339, fraction optional),
/// rewritten as Go's JSON encoding writes it (RFC 3339 with nanoseconds:
/// fraction without trailing zeros, `Z` for a zero offset).
pub fn rfc3339_nano(s: &str) -> Option<String> {
    let t = parse_rfc3339(s)?;
    let mut out = s[..19].to_string();
    let frac = t.frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if t.offset_minutes == 0 {
        out.push('Z');
    } else {
        out.push_str(&s[s.len() - 6..]);
    }
    Some(out)
}

/// An instant, for ordering (seconds since 1970 in UTC, nanoseconds).
pub fn rfc3339_instant(s: &str) -> Option<(i64, u32)> {
    let t = parse_rfc3339(s)?;
    let days = days_from_civil(t.year, t.month, t.day);
    let secs =
        days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second)
            - i64::from(t.offset_minutes) * 60;
    let mut nanos_s = t.frac.to_string();
    nanos_s.truncate(9);
    while nanos_s.len() < 9 {
        nanos_s.push('0');
    }
    Some((secs, nanos_s.parse().unwrap_or(0)))
}

struct Parsed<'a> {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    frac: &'a str,
    offset_minutes: i32,
}

fn parse_rfc3339(s: &str) -> Option<Parsed<'_>> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    let mut i = 19;
    let mut frac = "";
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = &s[start..i];
    }
    let offset_minutes = match &s[i..] {
        "Z" => 0,
        zone if zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = (h * 60 + m) as i32;
            if zone.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(Parsed {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
        frac,
        offset_minutes,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// JSON decoded as Go's `encoding/json` decodes it into `interface{}`
/// (numbers are `float64`): `--set-json` values, stored release records.
pub fn from_json(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::str(s.as_str()),
        J::Array(a) => Value::Seq(a.iter().map(from_json).collect()),
        J::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                out.insert(k.as_str(), from_json(x));
            }
            Value::Map(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_tables_fills_in_and_null_deletes() {
        let map = |t: &str| parse_values_file(t.as_bytes()).unwrap();
        let out = coalesce_tables(
            map("a: 1\nb: {x: 1}\nc: null\ne: [1]\n"),
            map("a: 2\nb: {z: 2}\nc: 3\nd: 4\ne: [2, 3]\n"),
        );
        assert_eq!(
            encode_values(&out),
            "a: 1\nb:\n  x: 1\n  z: 2\nd: 4\ne:\n- 1\n"
        );
    }

    #[test]
    fn masterminds_new_version() {
        let ok = |s: &str| parse_version(s).map(|v| v.to_string());
        assert_eq!(ok("1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(ok("v1.2").as_deref(), Some("1.2.0"));
        assert_eq!(ok("1").as_deref(), Some("1.0.0"));
        assert_eq!(ok("01.02.03").as_deref(), Some("1.2.3"));
        assert_eq!(
            ok("1.2.3-beta.1+build.5").as_deref(),
            Some("1.2.3-beta.1+build.5")
        );
        assert_eq!(ok("1.2.3-rc-1").as_deref(), Some("1.2.3-rc-1"));
        for bad in [
            "",
            "1.x",
            "1.2.3.4",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3+a..b",
            "x1.2.3",
            "1.2.3 ",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn values_merge_and_encode_as_flux() {
        let a = parse_values_file(b"a: 1\nnested: {x: 1, y: 2}\nlist: [1, 2]\nyes: on\n").unwrap();
        let b = parse_values_file(b"nested: {y: 3, z: 4}\nlist: [3]\nnew: ~\n").unwrap();
        let m = merge_maps(a, b);
        assert_eq!(
            encode_values(&m),
            "a: 1\nlist:\n- 3\nnested:\n  \"true\": 3\n  x: 1\n  z: 4\nnew: null\n\"true\": true\n"
        );
    }

    #[test]
    fn values_errors() {
        assert!(matches!(
            parse_values_file(b"- a\n"),
            Err(ValuesError::NotAMap("array"))
        ));
        assert!(parse_values_file(b"a: .inf\n").is_err());
        assert_eq!(parse_values_file(b"").unwrap(), Map::new());
        let m = load_values(b"a: 1\nb: {c: 1}\n---\nb: {d: 2}\n").unwrap();
        assert_eq!(encode_values(&m), "a: 1\nb:\n  c: 1\n  d: 2\n");
    }

    #[test]
    fn times_as_go_writes_them() {
        assert_eq!(
            rfc3339_nano("2024-01-02T03:04:05Z").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            rfc3339_nano("2024-01-02T03:04:05.120000+00:00").unwrap(),
            "2024-01-02T03:04:05.12Z"
        );
        assert_eq!(
            rfc3339_nano("2024-01-02T03:04:05.000-07:00").unwrap(),
            "2024-01-02T03:04:05-07:00"
        );
        assert_eq!(rfc3339_nano("2024-02-30T03:04:05Z"), None);
        assert_eq!(rfc3339_nano("2024-01-02 03:04:05Z"), None);
        let a = rfc3339_instant("2024-01-02T03:04:05+01:00").unwrap();
        let b = rfc3339_instant("2024-01-02T02:04:05Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(rfc3339_instant("1970-01-01T00:00:00Z").unwrap(), (0, 0));
    }
}
