//! A chart written as an archive, as `helm package` writes it (Helm's
//! `chartutil.Save`): `<name>-<version>.tgz`, every entry under `<name>/`,
//! in Helm's order: `Chart.yaml` (re-encoded from the metadata, as Helm
//! does), `Chart.lock` (v2 charts), `values.yaml` (the bytes as read, or
//! replaced values), `values.schema.json`, the templates, the other files,
//! then each subchart the same way under `<name>/charts/<subchart>/`.
//!
//! The tar stream is Go's `archive/tar` byte for byte (USTAR headers, a
//! prefix split or a PAX `path` record for long or non-ASCII names, mode
//! 0644, no directory entries, two zero blocks at the end); the gzip header
//! carries Helm's extra field and comment. Only the modification times
//! differ from Helm's (Helm writes each file's own; here one time for all,
//! so that the same chart packages to the same bytes).

use std::io::Write;

use flate2::{Compression, GzBuilder};
use sluice_kustomize::yaml::{Map, Value, to_yaml};

use crate::chart::{Chart, ChartError, Dependency, Lock, Metadata};

/// Helm's gzip extra field (an RFC 1952 subfield `rr`, 40 bytes).
const HELM_GZIP_EXTRA: &[u8] = b"rr\x28\x00aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=";

/// The archive's file name: `<name>-<version>.tgz`.
pub fn archive_file_name(chart: &Chart) -> String {
    format!("{}-{}.tgz", chart.metadata.name, chart.metadata.version)
}

/// Options of [`package_to`].
#[derive(Clone, Debug, Default)]
pub struct PackageOptions {
    /// Modification time of every entry, seconds since 1970 (Helm writes
    /// each file's own time, or the current time).
    pub mtime: i64,
}

/// Packages `chart` into `.tgz` bytes (see [`package_to`]).
pub fn package(chart: &Chart) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    package_to(chart, &mut out, &PackageOptions::default())?;
    Ok(out)
}

/// Packages `chart`: validates it as Helm's `Save` does (which also cleans
/// its strings), then writes the gzip-compressed tar to `out`.
pub fn package_to(chart: &Chart, out: impl Write, opts: &PackageOptions) -> Result<(), ChartError> {
    let entries = tar_entries(chart)?;
    let gz = GzBuilder::new()
        .extra(HELM_GZIP_EXTRA.to_vec())
        .comment("Helm")
        .mtime(0)
        .operating_system(255)
        .write(out, Compression::default());
    let mut w = GoTarWriter::new(gz);
    let io = |e: std::io::Error| ChartError::invalid(format!("failed to write chart archive: {e}"));
    for (name, data) in &entries {
        w.file(name, data, opts.mtime).map_err(io)?;
    }
    let gz = w.finish().map_err(io)?;
    gz.finish().map_err(io)?;
    Ok(())
}

/// The entries Helm writes for `chart`, in its order: names and contents.
pub fn tar_entries(chart: &Chart) -> Result<Vec<(String, Vec<u8>)>, ChartError> {
    let mut chart = chart.clone();
    chart
        .metadata
        .validate()
        .map_err(|e| ChartError::invalid(format!("chart validation: {e}")))?;
    let mut out = Vec::new();
    write_chart(&mut out, &mut chart, "")?;
    Ok(out)
}

fn write_chart(
    out: &mut Vec<(String, Vec<u8>)>,
    c: &mut Chart,
    prefix: &str,
) -> Result<(), ChartError> {
    let name = c.metadata.name.clone();
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ChartError::invalid(format!(
            "{name:?} is not a valid chart name"
        )));
    }
    let base = format!("{prefix}{name}");
    let v1 = c.metadata.api_version == "v1";
    let chart_yaml = to_yaml(&metadata_value(&c.metadata, !v1));
    out.push((format!("{base}/Chart.yaml"), chart_yaml.into_bytes()));
    if c.metadata.api_version == "v2"
        && let Some(lock) = &c.lock
    {
        out.push((
            format!("{base}/Chart.lock"),
            to_yaml(&lock_value(lock)).into_bytes(),
        ));
    }
    if let Some(values) = &c.values_yaml {
        out.push((format!("{base}/values.yaml"), values.clone()));
    }
    if let Some(schema) = &c.schema {
        if serde_json::from_slice::<serde_json::Value>(schema).is_err() {
            return Err(ChartError::invalid("invalid JSON in values.schema.json"));
        }
        out.push((format!("{base}/values.schema.json"), schema.clone()));
    }
    for f in c.templates.iter().chain(c.files.iter()) {
        out.push((
            format!("{base}/{}", crate::chart::clean_path(&f.name)),
            f.data.bytes().into_owned(),
        ));
    }
    for dep in &mut c.dependencies {
        write_chart(out, dep, &format!("{base}/charts/"))?;
    }
    Ok(())
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn strings(v: &[String]) -> Value {
    Value::Seq(v.iter().map(|x| s(x)).collect())
}

/// `Chart.yaml` as Helm writes it: the JSON form of `chart.Metadata`
/// (empty fields left out), which the emitter prints with sorted keys.
pub(crate) fn metadata_value(md: &Metadata, with_dependencies: bool) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k, s(v));
        }
    };
    put("name", &md.name);
    put("home", &md.home);
    put("version", &md.version);
    put("description", &md.description);
    put("icon", &md.icon);
    put("apiVersion", &md.api_version);
    put("condition", &md.condition);
    put("tags", &md.tags);
    put("appVersion", &md.app_version);
    put("kubeVersion", &md.kube_version);
    put("type", &md.chart_type);
    if !md.sources.is_empty() {
        m.insert("sources", strings(&md.sources));
    }
    if !md.keywords.is_empty() {
        m.insert("keywords", strings(&md.keywords));
    }
    if !md.maintainers.is_empty() {
        let list = md
            .maintainers
            .iter()
            .map(|mt| match mt {
                None => Value::Null,
                Some(mt) => {
                    let mut e = Map::new();
                    for (k, v) in [("name", &mt.name), ("email", &mt.email), ("url", &mt.url)] {
                        if !v.is_empty() {
                            e.insert(k, s(v));
                        }
                    }
                    Value::Map(e)
                }
            })
            .collect();
        m.insert("maintainers", Value::Seq(list));
    }
    if md.deprecated {
        m.insert("deprecated", Value::Bool(true));
    }
    if !md.annotations.is_empty() {
        let mut a = Map::new();
        for (k, v) in &md.annotations {
            a.insert(k.as_str(), s(v));
        }
        m.insert("annotations", Value::Map(a));
    }
    if with_dependencies && !md.dependencies.is_empty() {
        m.insert("dependencies", dependencies_value(&md.dependencies));
    }
    Value::Map(m)
}

fn dependencies_value(deps: &[Option<Dependency>]) -> Value {
    Value::Seq(
        deps.iter()
            .map(|d| match d {
                None => Value::Null,
                Some(d) => dependency_value(d),
            })
            .collect(),
    )
}

fn dependency_value(d: &Dependency) -> Value {
    let mut m = Map::new();
    m.insert("name", s(&d.name));
    if !d.version.is_empty() {
        m.insert("version", s(&d.version));
    }
    m.insert("repository", s(&d.repository));
    if !d.condition.is_empty() {
        m.insert("condition", s(&d.condition));
    }
    if !d.tags.is_empty() {
        m.insert("tags", strings(&d.tags));
    }
    if d.enabled {
        m.insert("enabled", Value::Bool(true));
    }
    if !d.import_values.is_empty() {
        let mut iv = Value::Seq(d.import_values.clone());
        crate::yaml::numbers_as_float(&mut iv);
        m.insert("import-values", iv);
    }
    if !d.alias.is_empty() {
        m.insert("alias", s(&d.alias));
    }
    Value::Map(m)
}

fn lock_value(lock: &Lock) -> Value {
    let mut m = Map::new();
    m.insert("generated", s(&lock.generated));
    m.insert("digest", s(&lock.digest));
    m.insert(
        "dependencies",
        match &lock.dependencies {
            None => Value::Null,
            Some(deps) => dependencies_value(deps),
        },
    );
    Value::Map(m)
}

// ---------------------------------------------------------------------------
// Go's archive/tar writer, for the headers Helm's Save produces.
// ---------------------------------------------------------------------------

const BLOCK: usize = 512;

struct GoTarWriter<W: Write> {
    w: W,
}

impl<W: Write> GoTarWriter<W> {
    fn new(w: W) -> Self {
        GoTarWriter { w }
    }

    /// A regular file, mode 0644, uid/gid 0, no user or group names.
    fn file(&mut self, name: &str, data: &[u8], mtime: i64) -> std::io::Result<()> {
        let mtime = mtime.clamp(0, 0o77777777777);
        if let Some(hdr) = ustar_header(name, data.len() as u64, mtime) {
            self.w.write_all(&hdr)?;
        } else {
            // A PAX extended header with the path, then the main header
            // with the name cut to what fits.
            let record = pax_record("path", name);
            let (dir, file) = match name.rsplit_once('/') {
                Some((d, f)) => (format!("{d}/"), f),
                None => (String::new(), name),
            };
            let pax_name = format!("{dir}PaxHeaders.0/{file}");
            let pax_name = to_ascii(&pax_name);
            let mut pax_name = pax_name.as_bytes()[..pax_name.len().min(100)].to_vec();
            while pax_name.last() == Some(&b'/') {
                pax_name.pop();
            }
            let mut blk = [0u8; BLOCK];
            put_str(&mut blk[0..100], &pax_name);
            put_octal(&mut blk[100..108], 0);
            put_octal(&mut blk[108..116], 0);
            put_octal(&mut blk[116..124], 0);
            put_octal(&mut blk[124..136], record.len() as u64);
            put_octal(&mut blk[136..148], 0);
            blk[156] = b'x';
            finish_block(&mut blk);
            self.w.write_all(&blk)?;
            self.w.write_all(record.as_bytes())?;
            self.pad(record.len() as u64)?;
            let main = header_block(to_ascii(name).as_bytes(), b"", data.len() as u64, mtime);
            self.w.write_all(&main)?;
        }
        self.w.write_all(data)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, size: u64) -> std::io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.w.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.w)
    }
}

/// A USTAR header when the name fits (≤ 100 bytes, or split into a prefix
/// of ≤ 155 and a name of ≤ 100 at a `/`) and is ASCII; `None` otherwise.
fn ustar_header(name: &str, size: u64, mtime: i64) -> Option<[u8; BLOCK]> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some(header_block(name.as_bytes(), b"", size, mtime));
    }
    let (prefix, suffix) = split_ustar_path(name)?;
    Some(header_block(
        suffix.as_bytes(),
        prefix.as_bytes(),
        size,
        mtime,
    ))
}

/// Go's `splitUSTARPath`.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    let mut length = name.len();
    if length <= 100 {
        return None;
    } else if length > 156 {
        length = 156;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > 100 || nlen == 0 || i > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

fn header_block(name: &[u8], prefix: &[u8], size: u64, mtime: i64) -> [u8; BLOCK] {
    let mut blk = [0u8; BLOCK];
    put_str(&mut blk[0..100], name);
    put_octal(&mut blk[100..108], 0o644);
    put_octal(&mut blk[108..116], 0);
    put_octal(&mut blk[116..124], 0);
    put_octal(&mut blk[124..136], size);
    put_octal(&mut blk[136..148], mtime as u64);
    blk[156] = b'0';
    // uname, gname empty; devmajor, devminor zero.
    put_octal(&mut blk[329..337], 0);
    put_octal(&mut blk[337..345], 0);
    put_str(&mut blk[345..500], prefix);
    finish_block(&mut blk);
    blk
}

/// Go's `formatString`: copy, NUL-terminate when there is room; a cut name
/// loses a trailing slash at the cut.
fn put_str(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let mut k = field.len() - 1;
        while k > 0 && s[k - 1] == b'/' {
            k -= 1;
        }
        field[k] = 0;
    }
}

/// Go's `formatOctal`: zero-padded octal, NUL-terminated.
fn put_octal(field: &mut [u8], x: u64) {
    let s = format!("{x:o}");
    let width = field.len() - 1;
    let padded = if s.len() < width {
        format!("{}{s}", "0".repeat(width - s.len()))
    } else {
        s
    };
    put_str(field, padded.as_bytes());
}

/// Magic `ustar\0`, version `00`, then the checksum (six octal digits, NUL,
/// space).
fn finish_block(blk: &mut [u8; BLOCK]) {
    blk[257..263].copy_from_slice(b"ustar\0");
    blk[263..265].copy_from_slice(b"00");
    blk[148..156].copy_from_slice(b"        ");
    let sum: u64 = blk.iter().map(|b| u64::from(*b)).sum();
    put_octal(&mut blk[148..155], sum);
    blk[155] = b' ';
}

/// Go's `toASCII`: non-ASCII characters dropped.
fn to_ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii).collect()
}

/// Go's `formatPAXRecord`: `<len> key=value\n`, the length counting itself.
fn pax_record(k: &str, v: &str) -> String {
    let base = k.len() + v.len() + 3;
    let mut size = base + base.to_string().len();
    let mut rec = format!("{size} {k}={v}\n");
    if rec.len() != size {
        size = rec.len();
        rec = format!("{size} {k}={v}\n");
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ustar_header_is_gos() {
        // The header Go's archive/tar writes for Helm's
        // Header{Name: "demo/Chart.yaml", Mode: 0644, Size: 5, ModTime: 0}.
        let h = header_block(b"demo/Chart.yaml", b"", 5, 0);
        assert_eq!(&h[0..16], b"demo/Chart.yaml\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[124..136], b"00000000005\0");
        assert_eq!(&h[136..148], b"00000000000\0");
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn long_names_split_or_go_pax() {
        let long = format!("{}/{}", "d".repeat(120), "f.yaml");
        assert_eq!(split_ustar_path(&long), Some((&long[..120], "f.yaml")));
        assert!(ustar_header(&long, 1, 0).is_some());
        let too_long = "x".repeat(120);
        assert!(ustar_header(&too_long, 1, 0).is_none());
        assert!(ustar_header("demo/templates/é.yaml", 1, 0).is_none());
        assert_eq!(pax_record("path", "a"), "9 path=a\n");
        assert_eq!(
            pax_record("path", &"a".repeat(93)),
            format!("103 path={}\n", "a".repeat(93))
        );
        assert_eq!(
            pax_record("path", &"a".repeat(90)),
            format!("99 path={}\n", "a".repeat(90))
        );
    }

    #[test]
    fn readable_by_the_tar_crate() {
        let mut w = GoTarWriter::new(Vec::new());
        w.file("demo/Chart.yaml", b"name: demo\n", 0).unwrap();
        let long = format!("demo/{}/x.yaml", "n".repeat(200));
        w.file(&long, b"x", 0).unwrap();
        w.file("demo/templates/é.yaml", b"y", 0).unwrap();
        let bytes = w.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec![
                "demo/Chart.yaml".to_string(),
                long,
                "demo/templates/é.yaml".into()
            ]
        );
    }
}
