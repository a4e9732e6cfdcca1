//! A Helm repository's `index.yaml`, read as a stream.
//!
//! An index can hold thousands of charts and tens of megabytes; Flux's
//! source-controller parses all of it into memory (and keeps it). Here the
//! YAML events are read from the `Read` as they come: the entries of other
//! charts are skipped without being built, only the one chart's versions
//! are kept, and nothing outlives the call. [`resolve`] picks a version as
//! Flux's HelmChart controller does (`ChartRepository.GetChartVersion`);
//! [`validate`] reads every entry once, one at a time, as the
//! HelmRepository controller checks a downloaded index.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::io::Read;
use std::rc::Rc;

use sluice_kustomize::yaml::Value;
use yaml_rust2::parser::Parser;

use crate::chart::{Metadata, decode_metadata};
use crate::yaml::{Builder, Event, Source, YamlError};

/// Flux's limit on an index (`MaxIndexSize`, 50 MiB).
pub const MAX_INDEX_SIZE: u64 = 50 << 20;

/// One version of a chart in an index (Helm's `repo.ChartVersion`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartVersion {
    /// The chart's metadata as the index lists it.
    pub metadata: Metadata,
    /// Where the archive is; relative URLs resolve against the repository
    /// URL ([`resolve_reference_url`]).
    pub urls: Vec<String>,
    /// The `created` time, as Go writes it back (RFC 3339, nanoseconds).
    pub created: String,
    pub removed: bool,
    /// The archive's SHA-256 (hex), when the index has one.
    pub digest: String,
}

impl ChartVersion {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
    pub fn version(&self) -> &str {
        &self.metadata.version
    }
}

/// What [`validate`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexSummary {
    pub api_version: String,
    /// The `generated` time as written, if any.
    pub generated: Option<String>,
    /// Charts (keys of `entries`).
    pub charts: usize,
    /// Chart versions that are valid.
    pub versions: usize,
    /// Entries Helm and Flux drop when they load the index (`null`, or
    /// failing Helm's metadata validation: no name, a version that is not
    /// semver, ...).
    pub skipped: usize,
}

/// Why an index could not be read or a version not resolved. The messages
/// are Helm's and Flux's.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("empty index.yaml file")]
    Empty,
    #[error("no API version specified")]
    NoApiVersion,
    #[error("index exceeds the maximum index file size of {0} bytes")]
    TooLarge(u64),
    #[error("failed to read index: {0}")]
    Io(std::io::Error),
    #[error("failed to read index: invalid UTF-8 at byte {0}")]
    Utf8(u64),
    #[error("error converting YAML to JSON: {0}")]
    Yaml(#[from] YamlError),
    #[error("error unmarshaling JSON: while decoding JSON: {0}")]
    Decode(String),
    #[error("no chart name found")]
    NoChartName,
    #[error("no chart version found")]
    NoChartVersion,
    #[error("{0}")]
    Constraint(String),
    #[error("no '{name}' chart with version matching '{version}' found")]
    NoMatch { name: String, version: String },
}

// ---------------------------------------------------------------------------
// Characters from a Read, decoded as they come, bounded in size.
// ---------------------------------------------------------------------------

/// What went wrong while feeding the parser (it only sees the input end).
#[derive(Default)]
struct Feed {
    error: Option<IndexError>,
    bytes: u64,
}

struct Chars<R: Read> {
    r: R,
    buf: Vec<u8>,
    text: String,
    pos: usize,
    feed: Rc<RefCell<Feed>>,
    limit: u64,
    done: bool,
}

impl<R: Read> Chars<R> {
    fn new(r: R, limit: u64, feed: Rc<RefCell<Feed>>) -> Self {
        Chars {
            r,
            buf: Vec::new(),
            text: String::new(),
            pos: 0,
            feed,
            limit,
            done: false,
        }
    }

    fn fail(&mut self, e: IndexError) {
        self.done = true;
        let mut f = self.feed.borrow_mut();
        if f.error.is_none() {
            f.error = Some(e);
        }
    }

    fn refill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            let n = match self.r.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(IndexError::Io(e));
                    return false;
                }
            };
            let total = {
                let mut f = self.feed.borrow_mut();
                f.bytes += n as u64;
                f.bytes
            };
            if total > self.limit {
                self.fail(IndexError::TooLarge(self.limit));
                return false;
            }
            if n == 0 {
                if !self.buf.is_empty() {
                    let at = total - self.buf.len() as u64;
                    self.fail(IndexError::Utf8(at));
                }
                self.done = true;
                return false;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let valid = match std::str::from_utf8(&self.buf) {
                Ok(s) => s.len(),
                Err(e) => {
                    if e.error_len().is_some() {
                        let at = total - (self.buf.len() - e.valid_up_to()) as u64;
                        self.fail(IndexError::Utf8(at));
                        return false;
                    }
                    e.valid_up_to()
                }
            };
            if valid == 0 {
                continue;
            }
            let rest = self.buf.split_off(valid);
            let bytes = std::mem::replace(&mut self.buf, rest);
            // Valid UTF-8 checked just above.
            self.text = String::from_utf8(bytes).unwrap_or_default();
            self.pos = 0;
            return true;
        }
    }
}

impl<R: Read> Iterator for Chars<R> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        loop {
            if let Some(c) = self.text[self.pos..].chars().next() {
                self.pos += c.len_utf8();
                return Some(c);
            }
            if self.done || !self.refill() {
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The walk over the index
// ---------------------------------------------------------------------------

/// What the walk does with each chart's list of versions.
enum Want<'a> {
    /// Keep the versions of one chart.
    One(&'a str),
    /// Decode each entry (and drop it) to count it.
    All,
}

#[derive(Default)]
struct Walked {
    api_version: String,
    generated: Option<String>,
    /// For `Want::One`: `None` when the chart is not in the index.
    versions: Option<Vec<ChartVersion>>,
    charts: usize,
    valid: usize,
    skipped: usize,
}

fn top_key(k: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .find(|f| **f == k)
        .or_else(|| known.iter().find(|f| f.eq_ignore_ascii_case(k)))
        .copied()
}

fn walk(input: impl Read, want: Want<'_>, limit: u64) -> Result<Walked, IndexError> {
    let feed = Rc::new(RefCell::new(Feed::default()));
    let chars = Chars::new(input, limit, feed.clone());
    let mut b = Builder::new(Parser::new(chars));
    let result = walk_events(&mut b, &want);
    // An I/O, size or UTF-8 failure shows up to the parser as an early end
    // of input: report it rather than what the parser made of it.
    let mut f = feed.borrow_mut();
    if let Some(e) = f.error.take() {
        return Err(e);
    }
    if f.bytes == 0 {
        return Err(IndexError::Empty);
    }
    let walked = result?;
    if walked.api_version.is_empty() {
        return Err(IndexError::NoApiVersion);
    }
    Ok(walked)
}

fn walk_events<S: Source>(b: &mut Builder<S>, want: &Want<'_>) -> Result<Walked, IndexError> {
    let mut out = Walked::default();
    // Stream start, then the first document (later ones are ignored, as
    // yaml.Unmarshal ignores them).
    loop {
        let ev = b.next()?;
        match ev {
            Event::StreamStart => {}
            Event::StreamEnd => return Ok(out),
            Event::DocumentStart => break,
            _ => return Err(YamlError::decode("unexpected event").into()),
        }
    }
    let ev = b.next()?;
    match ev {
        Event::MappingStart(..) => {}
        Event::Scalar(ref sc)
            if sc.implicit
                && sc.props.tag.is_none()
                && matches!(sc.value.as_str(), "" | "~" | "null" | "Null" | "NULL") =>
        {
            return Ok(out);
        }
        other => {
            let kind = match other {
                Event::SequenceStart(..) => "array",
                _ => "string",
            };
            return Err(IndexError::Decode(format!(
                "json: cannot unmarshal {kind} into Go value of type repo.IndexFile"
            )));
        }
    }
    const TOP: &[&str] = &[
        "serverInfo",
        "apiVersion",
        "generated",
        "entries",
        "publicKeys",
        "annotations",
    ];
    loop {
        let ev = b.next()?;
        if ev == Event::MappingEnd {
            break;
        }
        let key = b.node(ev)?;
        let key = key.scalar_text().map(|k| k.to_string()).unwrap_or_default();
        let ev = b.next()?;
        match top_key(&key, TOP) {
            Some("apiVersion") => {
                out.api_version = match b.node(ev)? {
                    Value::Null => String::new(),
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => crate::gofmt::format_g32(f),
                    Value::Bool(v) => v.to_string(),
                    other => {
                        return Err(IndexError::Decode(format!(
                            "json: cannot unmarshal {} into Go struct field IndexFile.apiVersion of type string",
                            kind_of(&other)
                        )));
                    }
                };
            }
            Some("generated") => {
                if let Value::Str(s) = b.node(ev)? {
                    out.generated = Some(s.to_string());
                }
            }
            Some("entries") => walk_entries(b, ev, want, &mut out)?,
            _ => b.skip(ev)?,
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
        Value::Str(_) => "string",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

fn walk_entries<S: Source>(
    b: &mut Builder<S>,
    ev: Event,
    want: &Want<'_>,
    out: &mut Walked,
) -> Result<(), IndexError> {
    match ev {
        Event::MappingStart(..) => {}
        Event::Scalar(ref sc)
            if sc.implicit
                && sc.props.tag.is_none()
                && matches!(sc.value.as_str(), "" | "~" | "null" | "Null" | "NULL") =>
        {
            return Ok(());
        }
        other => {
            b.skip(other)?;
            return Err(IndexError::Decode(
                "json: cannot unmarshal a non-object into Go struct field IndexFile.entries of type map[string]repo.ChartVersions".into(),
            ));
        }
    }
    loop {
        let ev = b.next()?;
        if ev == Event::MappingEnd {
            return Ok(());
        }
        let name = b
            .node(ev)?
            .scalar_text()
            .map(|k| k.to_string())
            .unwrap_or_default();
        out.charts += 1;
        let ev = b.next()?;
        let keep = match want {
            Want::One(n) => *n == name,
            Want::All => true,
        };
        if !keep {
            b.skip(ev)?;
            continue;
        }
        let mut kept = Vec::new();
        match ev {
            Event::SequenceStart(..) => loop {
                let ev = b.next()?;
                if ev == Event::SequenceEnd {
                    break;
                }
                let entry = b.node(ev)?;
                match decode_entry(&entry)? {
                    Some(cv) => {
                        out.valid += 1;
                        if matches!(want, Want::One(_)) {
                            kept.push(cv);
                        }
                    }
                    None => out.skipped += 1,
                }
            },
            other => {
                let v = b.node(other)?;
                if !v.is_null() {
                    return Err(IndexError::Decode(format!(
                        "json: cannot unmarshal {} into Go struct field IndexFile.entries of type repo.ChartVersions",
                        kind_of(&v)
                    )));
                }
            }
        }
        if matches!(want, Want::One(_)) {
            // A repeated key: the last one counts, as in Go.
            out.versions = Some(kept);
        }
    }
}

/// One entry as Helm's loader keeps it: `None` for a `null` entry or one
/// that fails Helm's metadata validation (Flux drops those).
fn decode_entry(entry: &Value) -> Result<Option<ChartVersion>, IndexError> {
    let m = match entry {
        Value::Null => return Ok(None),
        Value::Map(m) => m,
        other => {
            return Err(IndexError::Decode(format!(
                "json: cannot unmarshal {} into Go value of type repo.ChartVersion",
                kind_of(other)
            )));
        }
    };
    let mut cv = ChartVersion::default();
    decode_metadata(&mut cv.metadata, entry).map_err(IndexError::Decode)?;
    for (k, v) in m.iter() {
        match top_key(k, &["urls", "created", "removed", "digest"]) {
            Some("urls") => match v {
                Value::Seq(items) => {
                    cv.urls = items
                        .iter()
                        .map(|i| i.scalar_text().map(|s| s.to_string()).unwrap_or_default())
                        .collect();
                }
                Value::Null => {}
                other => {
                    return Err(IndexError::Decode(format!(
                        "json: cannot unmarshal {} into Go struct field ChartVersion.urls of type []string",
                        kind_of(other)
                    )));
                }
            },
            Some("created") => match v {
                Value::Str(s) => {
                    cv.created = crate::values::rfc3339_nano(s).ok_or_else(|| {
                        IndexError::Decode(format!(
                            "parsing time \"\\\"{s}\\\"\" as \"\\\"2006-01-02T15:04:05Z07:00\\\"\": cannot parse"
                        ))
                    })?;
                }
                Value::Null => {}
                other => {
                    return Err(IndexError::Decode(format!(
                        "json: cannot unmarshal {} into Go struct field ChartVersion.created of type time.Time",
                        kind_of(other)
                    )));
                }
            },
            Some("removed") => {
                if let Value::Bool(b) = v {
                    cv.removed = *b;
                }
            }
            Some("digest") => {
                if let Some(s) = v.scalar_text() {
                    cv.digest = s.to_string();
                }
            }
            _ => {}
        }
    }
    if cv.created.is_empty() {
        cv.created = crate::values::ZERO_TIME.to_string();
    }
    if cv.metadata.api_version.is_empty() {
        cv.metadata.api_version = "v1".into();
    }
    match cv.metadata.validate() {
        Ok(()) => Ok(Some(cv)),
        // Helm keeps entries whose only fault is a repeated dependency.
        Err(e)
            if e.to_string()
                .starts_with("validation: more than one dependency with name or alias") =>
        {
            Ok(Some(cv))
        }
        Err(_) => Ok(None),
    }
}

/// Reads an index as Flux's HelmRepository controller checks a download:
/// it must parse as a Helm index, have an `apiVersion`, and every entry
/// must decode. Returns the counts; nothing of the index is kept.
pub fn validate(index: impl Read) -> Result<IndexSummary, IndexError> {
    let w = walk(index, Want::All, MAX_INDEX_SIZE)?;
    Ok(IndexSummary {
        api_version: w.api_version,
        generated: w.generated,
        charts: w.charts,
        versions: w.valid,
        skipped: w.skipped,
    })
}

/// Resolves `chart` at `version` in an index, as Flux's
/// `ChartRepository.GetChartVersion`:
///
/// * a version string equal to an entry's version selects it;
/// * an empty version or `*` is the latest stable version (pre-releases
///   left out);
/// * anything else is a Masterminds semver constraint (`5.x`, `>=1.0 <2`,
///   `~1.2`, `^1`, `1.2 - 1.4`, `||`); a pre-release matches only a
///   constraint that names one;
/// * versions are read as Flux reads them (`X.Y.Z[-pre][+build]`, an
///   optional `v`; others are passed over), build metadata does not order
///   them, and between equal versions the later `created`
///   wins.
pub fn resolve(index: impl Read, chart: &str, version: &str) -> Result<ChartVersion, IndexError> {
    resolve_limited(index, chart, version, MAX_INDEX_SIZE)
}

/// [`resolve`] with another size limit than Flux's 50 MiB.
pub fn resolve_limited(
    index: impl Read,
    chart: &str,
    version: &str,
    limit: u64,
) -> Result<ChartVersion, IndexError> {
    let w = walk(index, Want::One(chart), limit)?;
    let versions = w.versions.ok_or(IndexError::NoChartName)?;
    select(versions, chart, version)
}

/// Flux's choice among the versions of one chart.
pub fn select(
    versions: Vec<ChartVersion>,
    chart: &str,
    version: &str,
) -> Result<ChartVersion, IndexError> {
    if versions.is_empty() {
        return Err(IndexError::NoChartVersion);
    }
    if !version.is_empty()
        && let Some(i) = versions
            .iter()
            .position(|cv| cv.metadata.version == version)
    {
        return Ok(versions.into_iter().nth(i).unwrap_or_default());
    }
    let latest_stable = version.is_empty() || version == "*";
    let constraint = sluice_semver::Constraint::parse(if latest_stable { "*" } else { version })
        .map_err(|e| IndexError::Constraint(e.to_string()))?;
    let mut best: Option<(sluice_semver::Version, (i64, u32), ChartVersion)> = None;
    for cv in versions {
        let Some(v) = flux_version(&cv.metadata.version) else {
            continue;
        };
        if !constraint.matches(&v) {
            continue;
        }
        let created = crate::values::rfc3339_instant(&cv.created).unwrap_or((i64::MIN, 0));
        let better = match &best {
            None => true,
            Some((bv, bc, _)) => match sluice_semver::compare(&v, bv) {
                Ordering::Greater => true,
                Ordering::Equal => created >= *bc,
                Ordering::Less => false,
            },
        };
        if better {
            best = Some((v, created, cv));
        }
    }
    best.map(|(_, _, cv)| cv)
        .ok_or_else(|| IndexError::NoMatch {
            name: chart.to_string(),
            version: version.to_string(),
        })
}

/// fluxcd/pkg `version.ParseVersion`: three dot-separated parts, then
/// Masterminds `NewVersion` (a `v` and leading zeros tolerated).
fn flux_version(v: &str) -> Option<sluice_semver::Version> {
    if v.splitn(3, '.').count() != 3 {
        return None;
    }
    let p = crate::values::parse_version(v)?;
    let mut out = sluice_semver::Version::new(p.major, p.minor, p.patch);
    if !p.pre.is_empty() {
        out.pre = semver::Prerelease::new(&p.pre).ok()?;
    }
    if !p.metadata.is_empty() {
        out.build = semver::BuildMetadata::new(&p.metadata).ok()?;
    }
    Some(out)
}

/// Helm's `ResolveReferenceURL`: a chart URL from the index resolved
/// against the repository URL (absolute URLs unchanged; the repository
/// URL's query carried over).
pub fn resolve_reference_url(repository_url: &str, chart_url: &str) -> Result<String, String> {
    crate::urlutil::resolve_reference_url(repository_url, chart_url)
}

/// Whether Helm sends a repository's credentials with the download of
/// `chart_url`: when it is on the repository's host (`host:port`, any user
/// info ignored), or when `pass_credentials` (Flux's `passCredentials`)
/// allows every host.
pub fn sends_credentials(repository_url: &str, chart_url: &str, pass_credentials: bool) -> bool {
    pass_credentials || host_of(repository_url) == host_of(chart_url)
}

/// Flux's `NormalizeURL` of a chart repository URL, the key a dependency's
/// `repository` and a HelmRepository's `spec.url` are matched by: an
/// `oci://` URL without trailing slashes, any other with exactly one (before
/// a query or fragment). Empty stays empty.
pub fn normalize_url(url: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let (path, rest) = url.split_at(cut);
    let path = path.trim_end_matches('/');
    if url.starts_with("oci://") {
        format!("{path}{rest}")
    } else {
        format!("{path}/{rest}")
    }
}

/// Flux's `ValidateDepURL`: the repositories a dependency may be fetched
/// from (`oci://`, `http://`, `https://`). Helm's repository names
/// (`@name`, `alias:name`) need Helm's local repository file, which a
/// controller does not have.
pub fn validate_dependency_url(url: &str) -> Result<(), String> {
    if url.starts_with("oci://") || url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else if url.starts_with('@') {
        Err(format!(
            "aliased repository dependency is not supported: {url}"
        ))
    } else {
        Err(format!("invalid dependency repository URL: {url}"))
    }
}

/// The `host[:port]` of a URL, without user info.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls_are_normalized_as_flux_matches_them() {
        assert_eq!(normalize_url(""), "");
        assert_eq!(
            normalize_url("https://charts.example.com/stable"),
            "https://charts.example.com/stable/"
        );
        assert_eq!(
            normalize_url("https://charts.example.com/stable//"),
            "https://charts.example.com/stable/"
        );
        assert_eq!(normalize_url("http://h:8080"), "http://h:8080/");
        assert_eq!(normalize_url("https://h/p?x=1"), "https://h/p/?x=1");
        assert_eq!(
            normalize_url("oci://ghcr.io/org/charts/"),
            "oci://ghcr.io/org/charts"
        );
        assert!(validate_dependency_url("oci://r/x").is_ok());
        assert!(validate_dependency_url("https://h/").is_ok());
        assert_eq!(
            validate_dependency_url("@stable").unwrap_err(),
            "aliased repository dependency is not supported: @stable"
        );
        assert_eq!(
            validate_dependency_url("alias:stable").unwrap_err(),
            "invalid dependency repository URL: alias:stable"
        );
    }

    const INDEX: &str = r#"apiVersion: v1
entries:
  other:
  - name: other
    version: 1.0.0
    urls: [other-1.0.0.tgz]
    created: "2024-01-01T00:00:00Z"
  podinfo:
  - apiVersion: v2
    name: podinfo
    version: 6.1.0-rc.1
    urls: [podinfo-6.1.0-rc.1.tgz]
    created: "2024-03-01T00:00:00Z"
  - apiVersion: v2
    name: podinfo
    version: 6.0.1
    urls: [https://example.com/podinfo-6.0.1.tgz]
    digest: abc
    created: "2024-02-01T00:00:00Z"
  - apiVersion: v2
    name: podinfo
    version: 5.2.1
    urls: [podinfo-5.2.1.tgz]
    created: "2023-01-01T00:00:00Z"
  - name: podinfo
    version: not-semver
    urls: [x.tgz]
  - ~
generated: "2024-03-01T00:00:00Z"
"#;

    fn get(version: &str) -> Result<ChartVersion, IndexError> {
        resolve(INDEX.as_bytes(), "podinfo", version)
    }

    #[test]
    fn resolves_as_flux() {
        assert_eq!(get("").unwrap().version(), "6.0.1");
        assert_eq!(get("*").unwrap().version(), "6.0.1");
        assert_eq!(get("5.x").unwrap().version(), "5.2.1");
        assert_eq!(get("<6.0.0").unwrap().version(), "5.2.1");
        assert_eq!(get("6.1.0-rc.1").unwrap().version(), "6.1.0-rc.1");
        assert_eq!(get(">=6.1.0-rc.0").unwrap().version(), "6.1.0-rc.1");
        let cv = get("6.0.1").unwrap();
        assert_eq!(cv.urls, vec!["https://example.com/podinfo-6.0.1.tgz"]);
        assert_eq!(cv.digest, "abc");
        assert_eq!(cv.created, "2024-02-01T00:00:00Z");
        assert_eq!(
            get("4.x").unwrap_err().to_string(),
            "no 'podinfo' chart with version matching '4.x' found"
        );
        assert_eq!(
            get("not a constraint").unwrap_err().to_string(),
            "improper constraint: not a constraint"
        );
        assert_eq!(
            resolve(INDEX.as_bytes(), "nope", "")
                .unwrap_err()
                .to_string(),
            "no chart name found"
        );
    }

    #[test]
    fn equal_versions_prefer_the_later_created() {
        let idx = "apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0+one, created: '2024-01-02T00:00:00Z', urls: [one]}\n  - {name: a, version: 1.0.0+two, created: '2024-01-01T00:00:00Z', urls: [two]}\n";
        assert_eq!(
            resolve(idx.as_bytes(), "a", "1.x").unwrap().urls,
            vec!["one"]
        );
        assert_eq!(
            resolve(idx.as_bytes(), "a", "1.0.0+two").unwrap().urls,
            vec!["two"]
        );
    }

    #[test]
    fn validate_counts() {
        let s = validate(INDEX.as_bytes()).unwrap();
        assert_eq!(s.api_version, "v1");
        assert_eq!(s.charts, 2);
        assert_eq!(s.versions, 4);
        assert_eq!(s.skipped, 2);
        assert_eq!(s.generated.as_deref(), Some("2024-03-01T00:00:00Z"));
    }

    #[test]
    fn bad_indexes() {
        assert!(matches!(validate(&b""[..]), Err(IndexError::Empty)));
        assert!(matches!(
            validate(&b"entries: {}\n"[..]),
            Err(IndexError::NoApiVersion)
        ));
        assert!(matches!(
            validate(&b"- a\n"[..]),
            Err(IndexError::Decode(_))
        ));
        assert!(matches!(
            validate(&b"apiVersion: v1\nentries: [\n"[..]),
            Err(IndexError::Yaml(_))
        ));
        assert!(matches!(
            validate(&b"apiVersion: v1\n\xff\n"[..]),
            Err(IndexError::Utf8(_))
        ));
        assert!(matches!(
            resolve_limited(INDEX.as_bytes(), "podinfo", "", 100),
            Err(IndexError::TooLarge(100))
        ));
        let json = r#"{"apiVersion":"v1","entries":{"a":[{"name":"a","version":"1.2.3","urls":["a.tgz"]}]}}"#;
        assert_eq!(
            resolve(json.as_bytes(), "a", "").unwrap().version(),
            "1.2.3"
        );
    }

    #[test]
    fn reads_in_small_pieces() {
        // A reader that hands out one byte at a time, splitting multi-byte
        // characters.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let idx = "apiVersion: v1\nentries:\n  é:\n  - {name: é, version: 1.0.0, description: 'ünïcode', urls: [x]}\n";
        let cv = resolve(Trickle(idx.as_bytes()), "é", "").unwrap();
        assert_eq!(cv.metadata.description, "ünïcode");
    }

    #[test]
    fn credentials_go_to_the_repository_s_host_only_unless_passed() {
        let repo = "https://charts.example:8443/stable";
        assert!(sends_credentials(
            repo,
            "https://u:p@charts.example:8443/x/y.tgz",
            false
        ));
        assert!(!sends_credentials(repo, "https://cdn.example/y.tgz", false));
        assert!(!sends_credentials(
            repo,
            "https://charts.example/y.tgz",
            false
        ));
        assert!(sends_credentials(repo, "https://cdn.example/y.tgz", true));
    }
}
