//! A Helm release record as Helm stores it (`pkg/release/v1`,
//! `pkg/storage/driver`): the release's JSON exactly as Go's
//! `encoding/json` writes Helm's structs (field order, `omitempty` and
//! `omitzero`, `null` for nil slices and maps, `[]byte` in base64, times in
//! RFC 3339 with nanoseconds, `<`, `>` and `&` escaped), gzip-compressed and
//! base64-encoded into the `release` key of a Secret named
//! `sh.helm.release.v1.NAME.vVERSION` of type `helm.sh/release.v1`, with
//! Helm's labels.
//!
//! Exactness matters twice: the real `helm` CLI must read what sluice
//! writes, and Flux's helm-controller digests a release's JSON, so a release
//! read back and written again must give the same bytes (a release made by
//! Helm or by Flux round-trips byte for byte; `tests/it/release.rs` checks it
//! on records the real Helm printed). The gzip stream itself is flate2's, not
//! Go's: any gzip reader takes it, and nothing digests the compressed form.
//!
//! As Helm, a stored chart has no subcharts (Helm's `Chart` keeps them in
//! an unexported field), only the chart's own templates, values, schema and
//! files.

use std::collections::BTreeMap;
use std::io::Read;

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use crate::chart::{Dependency, Lock, Metadata};
use crate::funcs::go::{json_float, json_string};
use crate::jsonw::{JsonOut, Streamed};

/// The Secret type Helm gives release records.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The `owner` label of a release record.
pub const OWNER: &str = "helm";
/// The key of the record in the Secret's data.
pub const DATA_KEY: &str = "release";
/// Labels Helm sets itself (a release's own labels may not use them).
pub const SYSTEM_LABELS: &[&str] = &[
    "name",
    "owner",
    "status",
    "version",
    "createdAt",
    "modifiedAt",
];
/// What Helm's storage decompresses at most from one record (beyond it the
/// record is refused rather than inflated: a Secret holds at most 1 MiB,
/// and real records compress about tenfold).
pub const MAX_DECODED: usize = 64 << 20;

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReleaseError {
    #[error("release record: {0}")]
    Decode(String),
    #[error("release record: {0}")]
    Encode(String),
}

fn bad(msg: impl Into<String>) -> ReleaseError {
    ReleaseError::Decode(msg.into())
}

/// Helm's release statuses (`pkg/release/common`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unknown,
    Deployed,
    Uninstalled,
    Superseded,
    Failed,
    Uninstalling,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Unknown,
        Status::Deployed,
        Status::Uninstalled,
        Status::Superseded,
        Status::Failed,
        Status::Uninstalling,
        Status::PendingInstall,
        Status::PendingUpgrade,
        Status::PendingRollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether an operation is in progress (`pending-*`): Helm refuses
    /// another one ("another operation is in progress").
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }
}

/// `release.Info`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// Times as Go writes them (RFC 3339 with nanoseconds); `None` is Go's
    /// zero time, which Helm omits.
    pub first_deployed: Option<String>,
    pub last_deployed: Option<String>,
    pub deleted: Option<String>,
    pub description: String,
    /// Kept as written: Helm writes any string it was given.
    pub status: String,
    pub notes: String,
    /// `resources` (only `helm status --show-resources` fills it; never
    /// stored by Helm): kept as read, written with sorted keys.
    pub resources: Option<serde_json::Value>,
}

impl Info {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Unknown)
    }
}

/// `release.Hook` (also what the renderer gives for each hook document).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hook {
    pub name: String,
    pub kind: String,
    pub path: String,
    pub manifest: String,
    pub events: Vec<String>,
    pub last_run: HookExecution,
    pub weight: i64,
    pub delete_policies: Vec<String>,
    pub output_log_policies: Vec<String>,
}

/// `release.HookExecution`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookExecution {
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// `Unknown`, `Running`, `Succeeded`, `Failed` (or empty).
    pub phase: String,
}

/// `common.File` of a stored chart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredFile {
    pub name: String,
    /// `None` is Go's nil slice (`null`). Shared with the chart it was made from (packed
    /// when it is).
    pub data: Option<crate::chart::Data>,
    pub mod_time: Option<String>,
}

/// `chart.Chart` as stored in a release (no subcharts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredChart {
    pub metadata: Option<Metadata>,
    pub lock: Option<Lock>,
    pub templates: Option<Vec<StoredFile>>,
    pub values: Option<YMap>,
    pub schema: Option<Vec<u8>>,
    /// Always written (Go's zero time when the chart has no schema).
    pub schema_mod_time: String,
    pub files: Option<Vec<StoredFile>>,
    pub mod_time: Option<String>,
}

impl StoredChart {
    /// The stored form of a chart as rendered: its own templates and files
    /// (subcharts are not stored, as in Helm), and the metadata and values
    /// after its dependencies were processed, as Helm stores them.
    pub fn rendered(chart: &crate::chart::Chart, rendered: &crate::render::Release) -> StoredChart {
        let files = |fs: &[crate::chart::File]| {
            fs.iter()
                .map(|f| StoredFile {
                    name: f.name.clone(),
                    data: Some(f.data.clone()),
                    mod_time: None,
                })
                .collect::<Vec<_>>()
        };
        StoredChart {
            metadata: Some(rendered.chart_metadata.clone()),
            lock: chart.lock.clone(),
            templates: Some(files(&chart.templates)),
            values: Some(rendered.chart_values.clone()),
            schema: chart.schema.clone(),
            schema_mod_time: crate::values::ZERO_TIME.to_string(),
            files: Some(files(&chart.files)),
            mod_time: None,
        }
    }
}

/// `release.Release`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Release {
    pub name: String,
    pub info: Option<Info>,
    pub chart: Option<StoredChart>,
    /// The user-supplied values (`config`).
    pub config: YMap,
    pub manifest: String,
    pub hooks: Vec<Hook>,
    pub version: i64,
    pub namespace: String,
    /// Not in the JSON: the record's labels other than Helm's own.
    pub labels: BTreeMap<String, String>,
    /// `ssa` or `csa` (Helm v4), or empty.
    pub apply_method: String,
}

/// What a new revision is made of (Helm's `createRelease` and what
/// install, upgrade and rollback fill in after rendering).
pub struct NewRevision<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub version: i64,
    pub chart: &'a crate::chart::Chart,
    pub rendered: &'a crate::render::Release,
    /// The values the user gave (Helm's `config`), not the coalesced ones.
    pub config: YMap,
    /// When it was first deployed (the first revision's time) and when this
    /// revision was: RFC 3339 with nanoseconds.
    pub first_deployed: &'a str,
    pub last_deployed: &'a str,
    pub status: Status,
    /// `Install complete`, `Upgrade complete`, `Rollback to 3`, ...
    pub description: &'a str,
    /// `ssa` (server-side apply, Helm v4's default) or `csa`.
    pub apply_method: &'a str,
}

impl Release {
    /// A release record as Helm makes one from a rendered chart: the
    /// manifest without CRDs, the hooks (not yet run), the notes, the chart
    /// as processed. Byte for byte what Helm v4.2.4 stores for the same
    /// chart, values and times, apart from the files' modification times
    /// (which Helm reads from the file system and sluice leaves out; Helm
    /// reads records without them). `tests/it/release.rs` checks it.
    pub fn new_revision(n: NewRevision<'_>) -> Release {
        let hooks = n.rendered.hooks.clone();
        Release {
            name: n.name.into(),
            info: Some(Info {
                first_deployed: Some(n.first_deployed.into()),
                last_deployed: Some(n.last_deployed.into()),
                deleted: None,
                description: n.description.into(),
                status: n.status.as_str().into(),
                notes: n.rendered.notes.clone(),
                resources: None,
            }),
            chart: Some(StoredChart::rendered(n.chart, n.rendered)),
            config: n.config,
            manifest: n.rendered.manifest(false),
            hooks,
            version: n.version,
            namespace: n.namespace.into(),
            labels: BTreeMap::new(),
            apply_method: n.apply_method.into(),
        }
    }
}

/// The name of the Secret holding `name`'s revision `version`.
pub fn storage_key(name: &str, version: i64) -> String {
    format!("sh.helm.release.v1.{name}.v{version}")
}

impl Release {
    pub fn status(&self) -> Status {
        self.info.as_ref().map_or(Status::Unknown, Info::status)
    }

    /// The labels of the record's Secret, as Helm's Secrets driver sets
    /// them: the release's own labels, then `name`, `owner`, `status`,
    /// `version`, and `createdAt` (Unix seconds) on create or
    /// `modifiedAt` on update.
    pub fn storage_labels(
        &self,
        created_at: Option<i64>,
        modified_at: Option<i64>,
    ) -> BTreeMap<String, String> {
        let mut l = self.labels.clone();
        if let Some(t) = created_at {
            l.insert("createdAt".into(), t.to_string());
        }
        if let Some(t) = modified_at {
            l.insert("modifiedAt".into(), t.to_string());
        }
        l.insert("name".into(), self.name.clone());
        l.insert("owner".into(), OWNER.into());
        l.insert("status".into(), self.status().as_str().to_string());
        l.insert("version".into(), self.version.to_string());
        l
    }

    /// The record's JSON as Go's `json.Marshal(release)` writes it.
    pub fn to_json(&self) -> Result<String, ReleaseError> {
        let mut text = String::new();
        self.write_json(&mut text)?;
        Ok(text)
    }

    /// [`Release::to_json`], written to `out`.
    fn write_json<O: JsonOut + ?Sized>(&self, out: &mut O) -> Result<(), ReleaseError> {
        let mut w = Obj::new(out);
        w.str_omitempty("name", &self.name);
        if let Some(info) = &self.info {
            w.key("info");
            write_info(w.out, info)?;
        }
        if let Some(c) = &self.chart {
            w.key("chart");
            write_chart(w.out, c)?;
        }
        if !self.config.is_empty() {
            w.key("config");
            y_json(&Y::Map(self.config.clone()), w.out)?;
        }
        w.str_omitempty("manifest", &self.manifest);
        if !self.hooks.is_empty() {
            w.key("hooks");
            w.out.push('[');
            for (i, h) in self.hooks.iter().enumerate() {
                if i > 0 {
                    w.out.push(',');
                }
                write_hook(w.out, h);
            }
            w.out.push(']');
        }
        if self.version != 0 {
            w.key("version");
            w.out.push_str(&self.version.to_string());
        }
        w.str_omitempty("namespace", &self.namespace);
        w.str_omitempty("apply_method", &self.apply_method);
        w.end();
        Ok(())
    }

    /// Reads a record's JSON as Go's `json.Unmarshal` into Helm's structs
    /// (unknown fields ignored, as Go does).
    pub fn from_json(data: &[u8]) -> Result<Release, ReleaseError> {
        Release::from_value(parse_json(data)?)
    }

    /// [`Release::from_json`] of parsed JSON, consumed field by field: what a field held is
    /// freed once it is read (kube-prometheus-stack's chart is 8 MB of base64 in the JSON).
    fn from_value(v: J) -> Result<Release, ReleaseError> {
        let J::Object(m) = v else {
            return mismatch(&v, "release", "object");
        };
        let mut r = Release::default();
        for (k, x) in m {
            let x = &x;
            match k.as_str() {
                "name" => r.name = string(x, "name")?,
                "info" => r.info = opt(x, read_info)?,
                "chart" => r.chart = opt(x, read_chart)?,
                "config" => r.config = opt(x, |x| ymap(x, "config"))?.unwrap_or_default(),
                "manifest" => r.manifest = string(x, "manifest")?,
                "hooks" => {
                    r.hooks = opt(x, |x| {
                        list(x, "hooks", |h| {
                            opt(h, read_hook).map(Option::unwrap_or_default)
                        })
                    })?
                    .unwrap_or_default()
                }
                "version" => r.version = int(x, "version")?,
                "namespace" => r.namespace = string(x, "namespace")?,
                "apply_method" => r.apply_method = string(x, "apply_method")?,
                _ => {}
            }
        }
        Ok(r)
    }

    /// The Secret data Helm stores: base64 of the gzip of the JSON.
    ///
    /// The JSON is compressed as it is written, never held whole (kube-prometheus-stack's is
    /// 8 MB before gzip).
    pub fn encode(&self) -> Result<String, ReleaseError> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut out = Streamed::new(gz);
        self.write_json(&mut out)?;
        out.finish()
            .and_then(flate2::write::GzEncoder::finish)
            .map(|b| data_encoding::BASE64.encode(&b))
            .map_err(|e| ReleaseError::Encode(format!("gzip: {e}")))
    }

    /// Reads the Secret data Helm stores (base64, then gzip when the bytes
    /// start with gzip's magic, then JSON), as Helm's `decodeRelease`.
    pub fn decode(data: &[u8]) -> Result<Release, ReleaseError> {
        // The JSON is parsed as it is unzipped, never held as text (kube-prometheus-stack's is
        // megabytes), and the zipped bytes freed before the record is read from the parse.
        let raw = record_bytes(data)?;
        let parsed = if is_gzip(&raw) {
            let mut unzipped = Gunzip::new(&raw);
            let parsed =
                serde_json::from_reader(std::io::BufReader::with_capacity(64 << 10, &mut unzipped));
            unzipped.check()?;
            parsed.map_err(|e| bad(format!("invalid JSON: {e}")))?
        } else {
            parse_json(&raw)?
        };
        drop(raw);
        Release::from_value(parsed)
    }
}

/// A record's gzip stream, unzipped to at most [`MAX_DECODED`] bytes, keeping the first error
/// of the decoder (a JSON parser reading it reports only that reading failed).
struct Gunzip<'a> {
    inner: flate2::read::GzDecoder<&'a [u8]>,
    /// Bytes still allowed, one more than the bound: 0 once the bound was passed.
    left: u64,
    failed: Option<std::io::Error>,
}

impl<'a> Gunzip<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Gunzip {
            inner: flate2::read::GzDecoder::new(raw),
            left: MAX_DECODED as u64 + 1,
            failed: None,
        }
    }

    /// The bound passed, or the decoder's error, as errors of the record.
    fn check(self) -> Result<(), ReleaseError> {
        if self.left == 0 {
            return Err(bad(format!(
                "decompresses to more than {MAX_DECODED} bytes"
            )));
        }
        match self.failed {
            Some(e) => Err(bad(format!("gzip: {e}"))),
            None => Ok(()),
        }
    }
}

impl Read for Gunzip<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) => {
                let again = std::io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(e);
                Err(again)
            }
        }
    }
}

/// The bytes of a record's Secret data, base64-decoded (gzip or JSON).
fn record_bytes(data: &[u8]) -> Result<Vec<u8>, ReleaseError> {
    data_encoding::BASE64
        .decode(data)
        .map_err(|e| bad(format!("illegal base64 data: {e}")))
}

fn is_gzip(raw: &[u8]) -> bool {
    raw.len() > 3 && raw[..3] == [0x1f, 0x8b, 0x08]
}

fn parse_json(data: &[u8]) -> Result<J, ReleaseError> {
    serde_json::from_slice(data).map_err(|e| bad(format!("invalid JSON: {e}")))
}

/// The JSON inside a record's Secret data (base64, then gunzip when the
/// bytes start with gzip's magic), bounded by [`MAX_DECODED`].
pub fn record_json(data: &[u8]) -> Result<Vec<u8>, ReleaseError> {
    let raw = record_bytes(data)?;
    let json = if is_gzip(&raw) {
        let mut out = Vec::new();
        let mut unzipped = Gunzip::new(&raw);
        let read = unzipped.read_to_end(&mut out);
        unzipped.check()?;
        read.map_err(|e| bad(format!("gzip: {e}")))?;
        out
    } else {
        raw
    };
    Ok(json)
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// A JSON object being written field by field, straight into its parent's text: nested
/// objects are not built apart and copied in (a chart's files make a record megabytes long).
struct Obj<'a, O: JsonOut + ?Sized> {
    out: &'a mut O,
    first: bool,
}

impl<'a, O: JsonOut + ?Sized> Obj<'a, O> {
    fn new(out: &'a mut O) -> Obj<'a, O> {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        json_string(k, true, self.out);
        self.out.push(':');
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        json_string(v, true, self.out);
    }
    fn str_omitempty(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            self.str(k, v);
        }
    }
    fn strs_omitempty(&mut self, k: &str, v: &[String]) {
        if !v.is_empty() {
            self.key(k);
            write_strs(self.out, v);
        }
    }
    fn end(self) {
        self.out.push('}');
    }
}

fn write_strs<O: JsonOut + ?Sized>(out: &mut O, v: &[String]) {
    out.push('[');
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(s, true, out);
    }
    out.push(']');
}

/// A values tree as Go's `json.Marshal` of `map[string]interface{}`.
pub(crate) fn y_json<O: JsonOut + ?Sized>(v: &Y, out: &mut O) -> Result<(), ReleaseError> {
    match v {
        Y::Null => out.push_str("null"),
        Y::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Y::Int(i) => out.push_str(&i.to_string()),
        Y::Float(f) => {
            if !f.is_finite() {
                return Err(ReleaseError::Encode(format!(
                    "json: unsupported value: {}",
                    crate::gofmt::format_g64(*f)
                )));
            }
            out.push_str(&json_float(*f));
        }
        Y::Str(s) => json_string(s, true, out),
        Y::Seq(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                y_json(x, out)?;
            }
            out.push(']');
        }
        Y::Map(m) => {
            let mut entries: Vec<(&str, &Y)> = m.iter().map(|(k, x)| (&**k, x)).collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, true, out);
                out.push(':');
                y_json(x, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_bytes<O: JsonOut + ?Sized>(out: &mut O, b: Option<&[u8]>) {
    match b {
        None => out.push_str("null"),
        Some(b) => {
            out.push('"');
            out.base64(b);
            out.push('"');
        }
    }
}

pub(crate) fn write_info<O: JsonOut + ?Sized>(out: &mut O, i: &Info) -> Result<(), ReleaseError> {
    let mut w = Obj::new(out);
    for (k, t) in [
        ("first_deployed", &i.first_deployed),
        ("last_deployed", &i.last_deployed),
        ("deleted", &i.deleted),
    ] {
        if let Some(t) = t {
            w.str(k, t);
        }
    }
    w.str_omitempty("description", &i.description);
    w.str_omitempty("status", &i.status);
    w.str_omitempty("notes", &i.notes);
    if let Some(r) = &i.resources
        && !matches!(r, serde_json::Value::Null)
        && r.as_object().is_none_or(|m| !m.is_empty())
    {
        w.key("resources");
        // As Go writes it back after decoding it into `interface{}`.
        y_json(&crate::values::from_json(r), w.out)?;
    }
    w.end();
    Ok(())
}

pub(crate) fn write_hook<O: JsonOut + ?Sized>(out: &mut O, h: &Hook) {
    let mut w = Obj::new(out);
    w.str_omitempty("name", &h.name);
    w.str_omitempty("kind", &h.kind);
    w.str_omitempty("path", &h.path);
    w.str_omitempty("manifest", &h.manifest);
    w.strs_omitempty("events", &h.events);
    w.key("last_run");
    let mut r = Obj::new(&mut *w.out);
    if let Some(t) = &h.last_run.started_at {
        r.str("started_at", t);
    }
    if let Some(t) = &h.last_run.completed_at {
        r.str("completed_at", t);
    }
    r.str("phase", &h.last_run.phase);
    r.end();
    if h.weight != 0 {
        w.key("weight");
        w.out.push_str(&h.weight.to_string());
    }
    w.strs_omitempty("delete_policies", &h.delete_policies);
    w.strs_omitempty("output_log_policies", &h.output_log_policies);
    w.end();
}

fn write_files<O: JsonOut + ?Sized>(out: &mut O, files: &Option<Vec<StoredFile>>) {
    let Some(files) = files else {
        out.push_str("null");
        return;
    };
    out.push('[');
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut w = Obj::new(out);
        w.str("name", &f.name);
        w.key("data");
        write_bytes(w.out, f.data.as_ref().map(|d| d.bytes()).as_deref());
        if let Some(t) = &f.mod_time {
            w.str("modtime", t);
        }
        w.end();
    }
    out.push(']');
}

fn write_chart<O: JsonOut + ?Sized>(out: &mut O, c: &StoredChart) -> Result<(), ReleaseError> {
    let mut w = Obj::new(out);
    w.key("metadata");
    match &c.metadata {
        None => w.out.push_str("null"),
        Some(m) => write_metadata(w.out, m)?,
    }
    w.key("lock");
    match &c.lock {
        None => w.out.push_str("null"),
        Some(l) => write_lock(w.out, l)?,
    }
    w.key("templates");
    write_files(w.out, &c.templates);
    w.key("values");
    match &c.values {
        None => w.out.push_str("null"),
        Some(v) => y_json(&Y::Map(v.clone()), w.out)?,
    }
    w.key("schema");
    write_bytes(w.out, c.schema.as_deref());
    w.str("schemamodtime", &c.schema_mod_time);
    w.key("files");
    write_files(w.out, &c.files);
    if let Some(t) = &c.mod_time {
        w.str("modtime", t);
    }
    w.end();
    Ok(())
}

pub(crate) fn write_metadata<O: JsonOut + ?Sized>(
    out: &mut O,
    m: &Metadata,
) -> Result<(), ReleaseError> {
    let mut w = Obj::new(out);
    w.str_omitempty("name", &m.name);
    w.str_omitempty("home", &m.home);
    w.strs_omitempty("sources", &m.sources);
    w.str_omitempty("version", &m.version);
    w.str_omitempty("description", &m.description);
    w.strs_omitempty("keywords", &m.keywords);
    if !m.maintainers.is_empty() {
        w.key("maintainers");
        w.out.push('[');
        for (i, x) in m.maintainers.iter().enumerate() {
            if i > 0 {
                w.out.push(',');
            }
            match x {
                None => w.out.push_str("null"),
                Some(x) => {
                    let mut o = Obj::new(&mut *w.out);
                    o.str_omitempty("name", &x.name);
                    o.str_omitempty("email", &x.email);
                    o.str_omitempty("url", &x.url);
                    o.end();
                }
            }
        }
        w.out.push(']');
    }
    w.str_omitempty("icon", &m.icon);
    w.str_omitempty("apiVersion", &m.api_version);
    w.str_omitempty("condition", &m.condition);
    w.str_omitempty("tags", &m.tags);
    w.str_omitempty("appVersion", &m.app_version);
    if m.deprecated {
        w.key("deprecated");
        w.out.push_str("true");
    }
    if !m.annotations.is_empty() {
        w.key("annotations");
        let mut o = Obj::new(&mut *w.out);
        for (k, v) in &m.annotations {
            o.str(k, v);
        }
        o.end();
    }
    w.str_omitempty("kubeVersion", &m.kube_version);
    if !m.dependencies.is_empty() {
        w.key("dependencies");
        write_deps(w.out, &m.dependencies)?;
    }
    w.str_omitempty("type", &m.chart_type);
    w.end();
    Ok(())
}

fn write_deps<O: JsonOut + ?Sized>(
    out: &mut O,
    deps: &[Option<Dependency>],
) -> Result<(), ReleaseError> {
    out.push('[');
    for (i, d) in deps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some(d) = d else {
            out.push_str("null");
            continue;
        };
        let mut o = Obj::new(out);
        o.str("name", &d.name);
        o.str_omitempty("version", &d.version);
        o.str("repository", &d.repository);
        o.str_omitempty("condition", &d.condition);
        o.strs_omitempty("tags", &d.tags);
        if d.enabled {
            o.key("enabled");
            o.out.push_str("true");
        }
        if !d.import_values.is_empty() {
            o.key("import-values");
            y_json(&Y::Seq(d.import_values.clone()), o.out)?;
        }
        o.str_omitempty("alias", &d.alias);
        o.end();
    }
    out.push(']');
    Ok(())
}

fn write_lock<O: JsonOut + ?Sized>(out: &mut O, l: &Lock) -> Result<(), ReleaseError> {
    let mut o = Obj::new(out);
    o.str("generated", &l.generated);
    o.str("digest", &l.digest);
    o.key("dependencies");
    match &l.dependencies {
        None => o.out.push_str("null"),
        Some(d) => write_deps(o.out, d)?,
    }
    o.end();
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

type J = serde_json::Value;
type RResult<T> = Result<T, ReleaseError>;

fn kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "bool",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn mismatch<T>(v: &J, field: &str, want: &str) -> RResult<T> {
    Err(bad(format!(
        "json: cannot unmarshal {} into field {field} of type {want}",
        kind(v)
    )))
}

fn obj<'a>(v: &'a J, field: &str) -> RResult<&'a serde_json::Map<String, J>> {
    match v {
        J::Object(m) => Ok(m),
        other => mismatch(other, field, "object"),
    }
}

fn opt_obj<'a>(v: &'a J, field: &str) -> RResult<Option<&'a serde_json::Map<String, J>>> {
    match v {
        J::Null => Ok(None),
        v => obj(v, field).map(Some),
    }
}

/// `null` leaves a Go field at its zero value.
fn opt<T>(v: &J, f: impl FnOnce(&J) -> RResult<T>) -> RResult<Option<T>> {
    match v {
        J::Null => Ok(None),
        v => f(v).map(Some),
    }
}

fn string(v: &J, field: &str) -> RResult<String> {
    match v {
        J::Null => Ok(String::new()),
        J::String(s) => Ok(s.clone()),
        other => mismatch(other, field, "string"),
    }
}

fn strings(v: &J, field: &str) -> RResult<Vec<String>> {
    Ok(opt(v, |v| list(v, field, |x| string(x, field)))?.unwrap_or_default())
}

fn int(v: &J, field: &str) -> RResult<i64> {
    match v {
        J::Null => Ok(0),
        J::Number(n) => n.as_i64().ok_or_else(|| {
            bad(format!(
                "json: cannot unmarshal number {n} into field {field} of type int"
            ))
        }),
        other => mismatch(other, field, "int"),
    }
}

fn list<T>(v: &J, field: &str, f: impl Fn(&J) -> RResult<T>) -> RResult<Vec<T>> {
    match v {
        J::Array(a) => a.iter().map(f).collect(),
        other => mismatch(other, field, "array"),
    }
}

/// A Go time field: zero (absent, `null`, `""`, or year 1's first instant)
/// is `None`; otherwise the time as Go writes it back.
fn time(v: &J, field: &str) -> RResult<Option<String>> {
    match v {
        J::Null => Ok(None),
        J::String(s) if s.is_empty() => Ok(None),
        J::String(s) => {
            let t = crate::values::rfc3339_nano(s)
                .ok_or_else(|| bad(format!("field {field}: parsing time {s:?} as RFC 3339")))?;
            Ok((t != crate::values::ZERO_TIME).then_some(t))
        }
        other => mismatch(other, field, "time.Time"),
    }
}

fn bytes(v: &J, field: &str) -> RResult<Option<Vec<u8>>> {
    match v {
        J::Null => Ok(None),
        J::String(s) => {
            // Go's decoder skips newlines inside base64 (which Go's encoder never writes).
            let decoded = if memchr::memchr2(b'\r', b'\n', s.as_bytes()).is_some() {
                let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
                data_encoding::BASE64.decode(clean.as_bytes())
            } else {
                data_encoding::BASE64.decode(s.as_bytes())
            };
            decoded
                .map(Some)
                .map_err(|e| bad(format!("field {field}: illegal base64 data: {e}")))
        }
        other => mismatch(other, field, "[]uint8"),
    }
}

fn ymap(v: &J, field: &str) -> RResult<YMap> {
    match crate::values::from_json(v) {
        Y::Map(m) => Ok(m),
        _ => mismatch(v, field, "map[string]interface {}"),
    }
}

fn read_info(v: &J) -> RResult<Info> {
    let mut i = Info::default();
    for (k, x) in obj(v, "info")? {
        match k.as_str() {
            "first_deployed" => i.first_deployed = time(x, k)?,
            "last_deployed" => i.last_deployed = time(x, k)?,
            "deleted" => i.deleted = time(x, k)?,
            "description" => i.description = string(x, k)?,
            "status" => i.status = string(x, k)?,
            "notes" => i.notes = string(x, k)?,
            "resources" => i.resources = opt(x, |x| Ok(x.clone()))?,
            _ => {}
        }
    }
    Ok(i)
}

fn read_hook(v: &J) -> RResult<Hook> {
    let mut h = Hook::default();
    for (k, x) in obj(v, "hook")? {
        match k.as_str() {
            "name" => h.name = string(x, k)?,
            "kind" => h.kind = string(x, k)?,
            "path" => h.path = string(x, k)?,
            "manifest" => h.manifest = string(x, k)?,
            "events" => h.events = strings(x, k)?,
            "last_run" => {
                if let Some(r) = opt_obj(x, "last_run")? {
                    for (k, x) in r {
                        match k.as_str() {
                            "started_at" => h.last_run.started_at = time(x, k)?,
                            "completed_at" => h.last_run.completed_at = time(x, k)?,
                            "phase" => h.last_run.phase = string(x, k)?,
                            _ => {}
                        }
                    }
                }
            }
            "weight" => h.weight = int(x, k)?,
            "delete_policies" => h.delete_policies = strings(x, k)?,
            "output_log_policies" => h.output_log_policies = strings(x, k)?,
            _ => {}
        }
    }
    Ok(h)
}

fn read_files(v: &J, field: &str) -> RResult<Option<Vec<StoredFile>>> {
    opt(v, |v| {
        list(v, field, |f| {
            let mut out = StoredFile::default();
            if let Some(m) = opt_obj(f, field)? {
                for (k, x) in m {
                    match k.as_str() {
                        "name" => out.name = string(x, k)?,
                        "data" => out.data = bytes(x, k)?.map(Into::into),
                        "modtime" => out.mod_time = time(x, k)?,
                        _ => {}
                    }
                }
            }
            Ok(out)
        })
    })
}

fn read_chart(v: &J) -> RResult<StoredChart> {
    let mut c = StoredChart {
        schema_mod_time: crate::values::ZERO_TIME.to_string(),
        ..StoredChart::default()
    };
    for (k, x) in obj(v, "chart")? {
        match k.as_str() {
            "metadata" => {
                c.metadata = opt(x, |x| {
                    let mut md = Metadata::default();
                    crate::chart::decode_metadata(&mut md, &crate::values::from_json(x))
                        .map_err(|e| bad(format!("chart metadata: {e}")))?;
                    Ok(md)
                })?
            }
            "lock" => {
                c.lock = opt(x, |x| {
                    crate::chart::parse_lock(x.to_string().as_bytes(), "lock")
                        .map_err(|e| bad(format!("chart {e}")))
                })?
            }
            "templates" => c.templates = read_files(x, k)?,
            "values" => c.values = opt(x, |x| ymap(x, k))?,
            "schema" => c.schema = bytes(x, k)?,
            "schemamodtime" => {
                c.schema_mod_time =
                    time(x, k)?.unwrap_or_else(|| crate::values::ZERO_TIME.to_string())
            }
            "files" => c.files = read_files(x, k)?,
            "modtime" => c.mod_time = time(x, k)?,
            _ => {}
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Release {
        Release {
            name: "web".into(),
            info: Some(Info {
                first_deployed: Some("2026-12-02T10:00:00.5Z".into()),
                last_deployed: Some("2026-12-02T10:00:00.5Z".into()),
                status: "deployed".into(),
                description: "Install complete".into(),
                ..Info::default()
            }),
            config: {
                let mut m = YMap::new();
                m.insert("b", Y::Float(1e6));
                m.insert("a", Y::str("<x>&"));
                m
            },
            manifest: "---\n# Source: c/templates/a.yaml\nkind: ConfigMap\n".into(),
            version: 3,
            namespace: "apps".into(),
            ..Release::default()
        }
    }

    #[test]
    fn json_is_gos() {
        assert_eq!(
            sample().to_json().unwrap(),
            r#"{"name":"web","info":{"first_deployed":"2026-12-02T10:00:00.5Z","last_deployed":"2026-12-02T10:00:00.5Z","description":"Install complete","status":"deployed"},"config":{"a":"\u003cx\u003e\u0026","b":1000000},"manifest":"---\n# Source: c/templates/a.yaml\nkind: ConfigMap\n","version":3,"namespace":"apps"}"#
        );
        assert_eq!(Release::default().to_json().unwrap(), "{}");
    }

    /// A record much longer than the stream's chunks (a large chart's) is stored as its
    /// JSON, and hashed as its observation.
    #[test]
    fn a_long_record_is_streamed_whole() {
        let mut r = sample();
        r.manifest = "kind: ConfigMap\ndata:\n  html: \"<b>&amp;</b>\"\t\u{2028}\n".repeat(20_000);
        r.chart = Some(StoredChart {
            templates: Some(vec![StoredFile {
                name: "templates/big.yaml".into(),
                data: Some((0..300_000u32).map(|i| i as u8).collect::<Vec<_>>().into()),
                mod_time: None,
            }]),
            ..StoredChart::default()
        });
        let json = r.to_json().unwrap();
        assert!(json.len() > 1 << 20, "{}", json.len());
        assert_eq!(
            record_json(r.encode().unwrap().as_bytes()).unwrap(),
            json.into_bytes()
        );
        let observation = crate::flux::observation_json(&r, "sha256:abc").unwrap();
        assert_eq!(
            crate::flux::release_digest(&r, "sha256:abc").unwrap(),
            format!(
                "sha256:{}",
                data_encoding::HEXLOWER.encode(&<sha2::Sha256 as sha2::Digest>::digest(
                    observation.as_bytes()
                ))
            )
        );
    }

    #[test]
    fn storage_round_trips() {
        let r = sample();
        let json = r.to_json().unwrap();
        let data = r.encode().unwrap();
        assert_eq!(
            Release::decode(data.as_bytes()).unwrap().to_json().unwrap(),
            json
        );
        // An uncompressed record (older Helm) is read too.
        let plain = data_encoding::BASE64.encode(json.as_bytes());
        assert_eq!(
            Release::decode(plain.as_bytes())
                .unwrap()
                .to_json()
                .unwrap(),
            json
        );
    }

    #[test]
    fn labels_and_key_are_helms() {
        let r = sample();
        assert_eq!(storage_key("web", 3), "sh.helm.release.v1.web.v3");
        let l = r.storage_labels(Some(1700000000), None);
        assert_eq!(
            l.into_iter().collect::<Vec<_>>(),
            [
                ("createdAt", "1700000000"),
                ("name", "web"),
                ("owner", "helm"),
                ("status", "deployed"),
                ("version", "3"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn file_data_is_base64_with_newlines_skipped_as_go_does() {
        let record = |data: &str| {
            let json = format!(
                r#"{{"chart":{{"files":[{{"name":"a.txt","data":"{data}"}}]}},"version":1}}"#
            );
            let r = Release::from_json(json.as_bytes()).map_err(|e| e.to_string())?;
            let files = r.chart.and_then(|c| c.files).unwrap_or_default();
            Ok::<_, String>(files.into_iter().next().and_then(|f| f.data))
        };
        let want: Option<crate::chart::Data> = Some(b"hello, world".to_vec().into());
        assert_eq!(record("aGVsbG8sIHdvcmxk"), Ok(want.clone()));
        assert_eq!(record(r"aGVsbG8s\nIHdv\r\ncmxk"), Ok(want));
        let e = record("aGVsbG8*").unwrap_err();
        assert!(e.contains("field data: illegal base64 data"), "{e}");
        assert!(Release::from_json(b"[1]").is_err());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        for data in ["%%%", "aGVsbG8=", "H4sIAAAAAAAA", ""] {
            assert!(Release::decode(data.as_bytes()).is_err(), "{data}");
        }
        // A record cut short is told as gzip's error, not as the JSON's end.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, br#"{"name":"web","version":1}"#).unwrap();
        let zipped = gz.finish().unwrap();
        let whole = data_encoding::BASE64.encode(&zipped);
        assert_eq!(Release::decode(whole.as_bytes()).unwrap().name, "web");
        let cut = data_encoding::BASE64.encode(&zipped[..zipped.len() - 9]);
        let e = Release::decode(cut.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("gzip: "), "{e}");
        let e = Release::from_json(br#"{"version":"3"}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "release record: json: cannot unmarshal string into field version of type int"
        );
        let e = Release::from_json(br#"{"info":{"first_deployed":"yesterday"}}"#).unwrap_err();
        assert!(e.to_string().contains("first_deployed"), "{e}");
    }

    #[test]
    fn a_gzip_bomb_is_refused() {
        let zeros = vec![b' '; MAX_DECODED + 10];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &zeros).unwrap();
        let data = data_encoding::BASE64.encode(&gz.finish().unwrap());
        let e = Release::decode(data.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn statuses_are_helms() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert!(Status::PendingUpgrade.is_pending());
        assert!(!Status::Deployed.is_pending());
    }
}
