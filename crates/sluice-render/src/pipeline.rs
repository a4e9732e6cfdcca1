//! The steps of the pipeline, each usable alone: `spec.path` resolved in
//! the checkout, the Kustomization's own overlays written around it (as
//! Flux's `kustomize.Generator` does), SOPS decryption of generator sources
//! and of built objects, the kustomize build, and `postBuild` substitution.
//!
//! Not pure: [`write_kustomization`] replaces the kustomization file of the
//! directory it is given and [`decrypt_sources`] replaces encrypted files
//! with their plaintext. Both replace files (unlink, then create), never
//! write through them, so they only ever touch the *private checkout*
//! they are given (a copy or a tree of hard links made for this one render,
//! see [`crate::artifact`] and [`crate::checkout_local`]); a user's work tree
//! or the shared artifact cache is never modified.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map as JsonMap, Number, Value};
use sluice_api::kustomization::{DISABLED_VALUE, KustomizationSpec, SUBSTITUTE_ANNOTATION};
use sluice_kustomize::remote::RemoteLoader;
use sluice_kustomize::yaml::{self, Value as Yaml};

/// kustomize's recognised kustomization file names, in its order.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Resolves `spec.path` inside the unpacked artifact `root`, refusing to
/// leave it (Flux's securejoin), also through a symlink. An empty path is
/// the root.
pub fn resolve_path(root: &Path, path: Option<&str>) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    let rel = path.unwrap_or("");
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out == root {
                    return Err(format!("path '{rel}' leaves the artifact root"));
                }
                out.pop();
            }
        }
    }
    if !out.is_dir() {
        return Err(format!(
            "kustomization path not found: stat {}: no such file or directory",
            rel
        ));
    }
    match real_path_in(root, &out)? {
        Ok(_) => Ok(out),
        Err(_) => Err(format!("path '{rel}' leaves the artifact root")),
    }
}

/// `path` with its symlinks resolved: `Ok` inside `root`, `Err` outside it.
/// The outer error is an I/O failure.
fn real_path_in(root: &Path, path: &Path) -> Result<Result<PathBuf, PathBuf>, String> {
    let real = path
        .canonicalize()
        .map_err(|e| format!("resolving {}: {e}", path.display()))?;
    let real_root = root
        .canonicalize()
        .map_err(|e| format!("resolving the artifact root: {e}"))?;
    Ok(if real.starts_with(&real_root) {
        Ok(real)
    } else {
        Err(real)
    })
}

/// Largest manifest the generator reads while listing a directory, as the
/// engine's per-file limit.
const MAX_SCANNED_FILE: u64 = sluice_kustomize::guard::MAX_FILE_BYTES;

/// Reads a file of the artifact for the generator: only a regular file
/// whose real path is inside `root`, within the per-file limit. Messages
/// name the file relative to `root`.
fn read_in_root(root: &Path, path: &Path) -> Result<String, String> {
    let shown = path
        .strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string());
    let real = real_path_in(root, path)?.map_err(|real| {
        format!(
            "security; '{shown}' resolves to '{}', outside the source root: a build may only read files inside its source",
            real.display()
        )
    })?;
    let data = sluice_kustomize::guard::read_regular_file(&real, &shown, MAX_SCANNED_FILE)
        .map_err(|e| e.to_string())?;
    String::from_utf8(data).map_err(|_| format!("'{shown}' is not valid UTF-8"))
}

fn existing_kustomization(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Writes `dir/kustomization.yaml` the way Flux's generator does: when
/// `dir` has no kustomization file, one listing every manifest below it
/// (sub-directories holding a kustomization are listed as directories and
/// not descended into); then `targetNamespace`, `namePrefix`, `nameSuffix`,
/// `patches`, `images`, `components` and `buildMetadata` of the Kustomization
/// are merged in.
pub fn write_kustomization(dir: &Path, spec: &KustomizationSpec) -> Result<(), String> {
    let mut kus = match existing_kustomization(dir) {
        Some(file) => {
            let text = read_in_root(dir, &file)?;
            let doc = yaml::parse_one(&text).map_err(|e| {
                format!(
                    "{}: {e}",
                    file.file_name().unwrap_or_default().to_string_lossy()
                )
            })?;
            let json = to_json(&doc);
            std::fs::remove_file(&file).map_err(|e| format!("{e}"))?;
            match json {
                Value::Object(m) => m,
                Value::Null => JsonMap::new(),
                _ => return Err(format!("{} is not a mapping", file.display())),
            }
        }
        None => {
            let mut resources = Vec::new();
            scan(dir, dir, &mut resources)?;
            let mut m = JsonMap::new();
            m.insert(
                "apiVersion".into(),
                "kustomize.config.k8s.io/v1beta1".into(),
            );
            m.insert("kind".into(), "Kustomization".into());
            m.insert(
                "resources".into(),
                Value::Array(resources.into_iter().map(Value::String).collect()),
            );
            m
        }
    };

    if let Some(ns) = spec.target_namespace.as_deref().filter(|s| !s.is_empty()) {
        kus.insert("namespace".into(), ns.into());
    }
    if let Some(p) = spec.name_prefix.as_deref().filter(|s| !s.is_empty()) {
        kus.insert("namePrefix".into(), p.into());
    }
    if let Some(s) = spec.name_suffix.as_deref().filter(|s| !s.is_empty()) {
        kus.insert("nameSuffix".into(), s.into());
    }
    if let Some(patches) = spec.patches.as_ref().filter(|p| !p.is_empty()) {
        let list = array_field(&mut kus, "patches")?;
        for p in patches {
            list.push(serde_json::to_value(p).map_err(|e| e.to_string())?);
        }
    }
    if let Some(images) = spec.images.as_ref().filter(|i| !i.is_empty()) {
        let list = array_field(&mut kus, "images")?;
        for image in images {
            let v = serde_json::to_value(image).map_err(|e| e.to_string())?;
            match list
                .iter_mut()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(image.name.as_str()))
            {
                Some(existing) => *existing = v,
                None => list.push(v),
            }
        }
    }
    if let Some(components) = spec.components.as_ref().filter(|c| !c.is_empty()) {
        let ignore_missing = spec.ignore_missing_components.unwrap_or(false);
        let list = array_field(&mut kus, "components")?;
        for c in components {
            if ignore_missing && !dir.join(c).exists() {
                continue;
            }
            list.push(Value::String(c.clone()));
        }
    }

    if let Some(options) = spec.build_metadata.as_ref().filter(|b| !b.is_empty()) {
        let list = array_field(&mut kus, "buildMetadata")?;
        for o in options {
            let v = Value::String(o.as_str().to_owned());
            if !list.contains(&v) {
                list.push(v);
            }
        }
    }

    let text = serde_json::to_string_pretty(&Value::Object(kus)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("kustomization.yaml"), text)
        .map_err(|e| format!("writing kustomization.yaml: {e}"))
}

fn array_field<'a>(
    kus: &'a mut JsonMap<String, Value>,
    name: &str,
) -> Result<&'a mut Vec<Value>, String> {
    let v = kus
        .entry(name.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if v.is_null() {
        *v = Value::Array(Vec::new());
    }
    v.as_array_mut()
        .ok_or_else(|| format!("kustomization field {name} is not a list"))
}

fn scan(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(base)
            .map(|p| format!("./{}", p.display()))
            .unwrap_or_default();
        if path.is_dir() {
            if existing_kustomization(&path).is_some() {
                out.push(rel);
            } else {
                scan(base, &path, out)?;
            }
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "yaml" && ext != "yml" {
            continue;
        }
        let text = read_in_root(base, &path)?;
        let docs = yaml::parse_all(&text)
            .map_err(|e| format!("failed to decode Kubernetes YAML from {rel}: {e}"))?;
        if docs.iter().all(Yaml::is_null) {
            continue;
        }
        out.push(rel);
    }
    Ok(())
}

/// How a Kustomization is built.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// The unpacked artifact: nothing outside it is read (symlinks
    /// resolved). `None` only for local use (the CLI on a work tree).
    pub root: Option<PathBuf>,
    /// The build fails once this passes (the Kustomization's timeout).
    pub deadline: Option<std::time::Instant>,
    /// Refuse remote bases and resources (Flux's `--no-remote-bases`).
    pub no_remote_bases: bool,
    /// Fetches remote bases and HTTP(S) resources (constructed by the
    /// process, e.g. `sluice_git::GitRemoteLoader`). `None`: remote
    /// references fail, as with `no_remote_bases`.
    pub remote: Option<Arc<dyn RemoteLoader>>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("root", &self.root)
            .field("deadline", &self.deadline)
            .field("no_remote_bases", &self.no_remote_bases)
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

/// Builds `dir` (after [`write_kustomization`]) with the native engine, as
/// Flux does: no load restrictions inside the artifact but nothing read
/// outside it, builtin plugins only, remote bases through the injected
/// loader unless disabled, within the engine's limits.
pub fn build(dir: &Path, bopts: &BuildOptions) -> Result<Vec<Yaml>, String> {
    let mut opts = sluice_kustomize::Options::new();
    opts.load_restrict_root_only = false;
    opts.jail.clone_from(&bopts.root);
    opts.deadline = bopts.deadline;
    opts.remote = if bopts.no_remote_bases {
        None
    } else {
        bopts.remote.clone()
    };
    sluice_kustomize::build(dir, &opts)
        .map(|o| {
            for w in &o.warnings {
                tracing::warn!(warning = %w, "kustomize build");
            }
            o.resources
        })
        .map_err(|e| {
            let msg = e.to_string();
            if bopts.no_remote_bases && msg.contains("remote resources are not supported here") {
                format!("{msg}: remote bases are disabled on this controller (--no-remote-bases)")
            } else {
                msg
            }
        })
}

/// `msg` with the scratch directory `root` taken out of its paths, so a
/// build error names files as they are in the source (`apps/kustomization.yaml`).
pub fn relative_to_root(msg: &str, root: &Path) -> String {
    let mut out = msg.to_owned();
    let mut roots = vec![root.to_path_buf()];
    if let Ok(c) = std::fs::canonicalize(root) {
        roots.insert(0, c);
    }
    for r in roots {
        let r = r.display().to_string();
        if r.len() > 1 {
            out = out.replace(&format!("{r}/"), "").replace(&r, ".");
        }
    }
    out
}

/// `postBuild` substitution of every object (unless annotated
/// `kustomize.toolkit.fluxcd.io/substitute: disabled`) with `vars`, as
/// Flux does: on the YAML text of each object, non-strict. `None` skips
/// substitution altogether (no `postBuild`). Errors name the object and the
/// variable, never a value.
pub fn substitute(
    objects: Vec<Yaml>,
    vars: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(objects.len());
    // Each object's substitution is bounded by sluice-envsubst; this bounds
    // what they add together.
    let mut growth = 0usize;
    for obj in objects {
        let Some(vars) = vars else {
            out.push(to_json(&obj));
            continue;
        };
        let disabled = obj
            .get_path(&["metadata", "annotations", SUBSTITUTE_ANNOTATION])
            .and_then(Yaml::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE));
        if disabled {
            out.push(to_json(&obj));
            continue;
        }
        let text = yaml::to_yaml(&obj);
        if !text.contains('$') {
            out.push(to_json(&obj));
            continue;
        }
        let subject = subject(&obj);
        let replaced =
            sluice_envsubst::substitute(&text, vars, sluice_envsubst::Options::default())
                .map_err(|e| format!("{subject} var substitution failed: {e}"))?;
        growth = growth.saturating_add(replaced.len().saturating_sub(text.len()));
        if growth > MAX_SUBSTITUTION_GROWTH {
            return Err(format!(
                "{subject} var substitution failed: the build's substitutions add more than {MAX_SUBSTITUTION_GROWTH} bytes"
            ));
        }
        let doc = yaml::parse_one(&replaced)
            .map_err(|e| format!("{subject} var substitution produced invalid YAML: {e}"))?;
        out.push(to_json(&doc));
    }
    Ok(out)
}

/// What `postBuild` substitution may add to a build's objects together:
/// 64 MiB (the engine's limit on what a build reads).
pub const MAX_SUBSTITUTION_GROWTH: usize = sluice_kustomize::guard::MAX_TOTAL_BYTES as usize;

/// The annotation that turns decryption off for one object (Flux's).
pub const DECRYPT_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/decrypt";

/// `spec.decryption` (SOPS), after the build and before substitution, as
/// Flux does: every object with a top-level `sops` block (any kind) is
/// decrypted unless annotated `kustomize.toolkit.fluxcd.io/decrypt:
/// disabled`. The MAC is not verified, as in Flux (the build changes
/// unencrypted fields); each encrypted value is authenticated by AES-GCM.
/// Messages name the object and the key path, never a value.
pub fn decrypt(objects: Vec<Yaml>, ids: &sluice_sops::Identities) -> Result<Vec<Yaml>, String> {
    let opts = sluice_sops::Options { verify_mac: false };
    let mut out = Vec::with_capacity(objects.len());
    for obj in objects {
        let json = to_json(&obj);
        let disabled = obj
            .get_path(&["metadata", "annotations", DECRYPT_ANNOTATION])
            .and_then(Yaml::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE));
        if disabled || !sluice_sops::is_encrypted(&json) {
            out.push(obj);
            continue;
        }
        let plain = sluice_sops::decrypt_object(&json, ids, &opts)
            .map_err(|e| format!("decryption failed for '{}': {}", subject(&obj), e.cause))?;
        out.push(from_json(&plain));
    }
    Ok(out)
}

/// Flux's last guard before applying: a `v1` Secret that still carries a
/// top-level `sops` block (none of the Kustomization's keys decrypted it, or
/// it has no `spec.decryption` at all) is refused, naming the Secret, unless
/// it is annotated `kustomize.toolkit.fluxcd.io/decrypt: disabled`. Sending
/// it would store the ciphertext as the Secret's values.
pub fn refuse_encrypted_secrets(objects: &[Value]) -> Result<(), String> {
    let encrypted = objects.iter().find(|o| {
        o.get("kind").and_then(Value::as_str) == Some("Secret")
            && o.get("apiVersion").and_then(Value::as_str) == Some("v1")
            && o.get("sops").is_some()
            && !o
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(DECRYPT_ANNOTATION))
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE))
    });
    match encrypted {
        Some(o) => Err(format!(
            "{} is SOPS encrypted, configuring decryption is required for this secret to be reconciled",
            sluice_sops::object_name(o)
        )),
        None => Ok(()),
    }
}

/// Largest encrypted source file decrypted in place (Flux's limit).
const MAX_ENCRYPTED_FILE: u64 = 5 << 20;

/// `spec.decryption` (SOPS) before the build, as Flux's
/// `DecryptSources` does: every kustomization reachable from `dir` through
/// local `resources` and `components` is read, and the files its
/// `secretGenerator`s take `files` and `envs` from, and its patch files,
/// are decrypted in place when they carry sops metadata. The format comes
/// from the file name (a generator file's from its key, an env file is
/// dotenv unless named otherwise). Files outside `root` are not touched;
/// remote references are skipped. Messages name files relative to `root`.
pub fn decrypt_sources(
    root: &Path,
    dir: &Path,
    ids: &sluice_sops::Identities,
) -> Result<(), String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("resolving the artifact root: {e}"))?;
    let mut seen_dirs = std::collections::HashSet::new();
    let mut done = std::collections::HashSet::new();
    visit_for_sources(&root, dir, ids, &mut seen_dirs, &mut done)
}

fn visit_for_sources(
    root: &Path,
    dir: &Path,
    ids: &sluice_sops::Identities,
    seen_dirs: &mut std::collections::HashSet<PathBuf>,
    done: &mut std::collections::HashSet<PathBuf>,
) -> Result<(), String> {
    // Only directories inside the artifact, each once.
    let Ok(dir) = dir.canonicalize() else {
        return Ok(());
    };
    if !dir.starts_with(root) || !dir.is_dir() || !seen_dirs.insert(dir.clone()) {
        return Ok(());
    }
    let Some(file) = existing_kustomization(&dir) else {
        return Ok(());
    };
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let text =
        std::fs::read_to_string(&file).map_err(|e| format!("reading {}: {e}", rel(&file)))?;
    let kus = yaml::parse_one(&text).map_err(|e| format!("{}: {e}", rel(&file)))?;
    let strings = |v: Option<&Yaml>| -> Vec<String> {
        match v {
            Some(Yaml::Seq(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Some(Yaml::Str(s)) => vec![s.to_string()],
            _ => Vec::new(),
        }
    };
    let mut sources: Vec<(String, sluice_sops::Format)> = Vec::new();
    if let Some(Yaml::Seq(gens)) = kus.get("secretGenerator") {
        for g in gens {
            for f in strings(g.get("files")) {
                let (key, path) = f.split_once('=').unwrap_or((f.as_str(), f.as_str()));
                sources.push((path.to_string(), sluice_sops::Format::for_path(key)));
            }
            let mut envs = strings(g.get("envs"));
            envs.extend(strings(g.get("env")));
            for e in envs {
                let format = match sluice_sops::Format::for_path(&e) {
                    sluice_sops::Format::Binary => sluice_sops::Format::Dotenv,
                    f => f,
                };
                sources.push((e, format));
            }
        }
    }
    if let Some(Yaml::Seq(patches)) = kus.get("patches") {
        for p in patches {
            if let Some(path) = p.get_str("path")
                && !path.contains("://")
            {
                sources.push((path.to_string(), sluice_sops::Format::for_path(path)));
            }
        }
    }
    for (path, format) in sources {
        let Ok(abs) = dir.join(&path).canonicalize() else {
            continue; // the build names a missing file
        };
        if !abs.starts_with(root) || done.contains(&abs) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| format!("{}: {e}", rel(&abs)))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > MAX_ENCRYPTED_FILE {
            return Err(format!(
                "cannot decrypt {}: {} bytes, over the {} byte limit for encrypted files",
                rel(&abs),
                meta.len(),
                MAX_ENCRYPTED_FILE
            ));
        }
        let data = std::fs::read(&abs).map_err(|e| format!("reading {}: {e}", rel(&abs)))?;
        if !format.is_encrypted(&data) {
            continue;
        }
        let opts = sluice_sops::Options { verify_mac: false };
        let plain = sluice_sops::decrypt_file(&data, format, ids, &opts, &rel(&abs))
            .map_err(|e| format!("decryption failed for {e}"))?;
        replace_file(&abs, &plain).map_err(|e| format!("writing {}: {e}", rel(&abs)))?;
        done.insert(abs);
    }
    let mut dirs = strings(kus.get("resources"));
    dirs.extend(strings(kus.get("components")));
    for d in dirs {
        if !d.contains("://") {
            visit_for_sources(root, &dir.join(d), ids, seen_dirs, done)?;
        }
    }
    Ok(())
}

/// Replaces `path` with a new file readable by its owner only. The
/// checkout's files are hard links into the shared artifact cache: writing
/// through one would put the plaintext into the cache.
fn replace_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::remove_file(path)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// JSON as the engine's YAML model.
fn from_json(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Int(i),
            None => Yaml::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Yaml::Str(s.as_str().into()),
        Value::Array(items) => Yaml::Seq(items.iter().map(from_json).collect()),
        Value::Object(m) => Yaml::Map(yaml::Map(
            m.iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect(),
        )),
    }
}

fn subject(obj: &Yaml) -> String {
    let kind = obj.get_str("kind").unwrap_or("");
    let ns = obj
        .get_path(&["metadata", "namespace"])
        .and_then(Yaml::as_str)
        .unwrap_or("");
    let name = obj
        .get_path(&["metadata", "name"])
        .and_then(Yaml::as_str)
        .unwrap_or("");
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    }
}

/// The engine's YAML model as JSON.
pub fn to_json(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Int(i) => Value::Number((*i).into()),
        Yaml::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Yaml::Str(s) => Value::String(s.to_string()),
        Yaml::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::kustomization::CrossNamespaceSourceReference;
    use sluice_api::kustomize::{Image, Patch, Selector};

    fn spec() -> KustomizationSpec {
        KustomizationSpec::new(
            "1m",
            true,
            CrossNamespaceSourceReference::git_repository("repo"),
        )
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: NAME\ndata:\n  k: v\n";

    #[test]
    fn generates_over_all_manifests_and_nested_kustomizations() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.yaml", &CM.replace("NAME", "a"));
        write(d.path(), "sub/b.yml", &CM.replace("NAME", "b"));
        write(d.path(), "sub/readme.md", "not yaml: [");
        write(d.path(), "base/kustomization.yaml", "resources: [c.yaml]\n");
        write(d.path(), "base/c.yaml", &CM.replace("NAME", "c"));
        write_kustomization(d.path(), &spec()).unwrap();
        let objs = build(d.path(), &BuildOptions::default()).unwrap();
        let mut names: Vec<String> = objs
            .iter()
            .map(|o| {
                o.get_path(&["metadata", "name"])
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn malformed_manifest_fails_generation() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "bad.yaml", "kind: [unclosed\n");
        let err = write_kustomization(d.path(), &spec()).unwrap_err();
        assert!(
            err.contains("failed to decode Kubernetes YAML from ./bad.yaml"),
            "{err}"
        );
    }

    #[test]
    fn overlays_are_merged_into_existing_kustomization() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "Kustomization",
            "resources: [cm.yaml, deploy.yaml]\nimages:\n- name: nginx\n  newTag: '1'\n",
        );
        write(d.path(), "cm.yaml", &CM.replace("NAME", "cm"));
        write(
            d.path(),
            "deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
        );
        write(
            d.path(),
            "comp/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  comp: yes\n",
        );
        let mut s = spec();
        s.target_namespace = Some("team".into());
        s.name_prefix = Some("p-".into());
        s.images = Some(vec![Image {
            name: "nginx".into(),
            new_tag: Some("2".into()),
            ..Default::default()
        }]);
        s.patches = Some(vec![Patch {
            patch: "- op: add\n  path: /data/extra\n  value: x\n".into(),
            target: Some(Selector {
                kind: Some("ConfigMap".into()),
                ..Default::default()
            }),
        }]);
        s.components = Some(vec!["comp".into(), "missing".into()]);
        s.ignore_missing_components = Some(true);
        write_kustomization(d.path(), &s).unwrap();
        assert!(!d.path().join("Kustomization").exists());
        let objs: Vec<Value> = build(d.path(), &BuildOptions::default())
            .unwrap()
            .iter()
            .map(to_json)
            .collect();
        let cm = objs.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        assert_eq!(cm["metadata"]["name"], "p-cm");
        assert_eq!(cm["metadata"]["namespace"], "team");
        assert_eq!(cm["data"]["extra"], "x");
        assert_eq!(cm["metadata"]["annotations"]["comp"], "yes");
        let dep = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
    }

    #[test]
    fn build_errors_name_files_relative_to_the_artifact() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "apps/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n",
        );
        let apps = d.path().join("apps");
        write_kustomization(&apps, &spec()).unwrap();
        let e = build(&apps, &BuildOptions::default()).unwrap_err();
        let e = relative_to_root(&e, d.path());
        assert!(
            e.starts_with("kustomization.yaml is empty (in apps/kustomization.yaml)"),
            "{e}"
        );
    }

    #[test]
    fn substitution_respects_disabled_annotation_and_types() {
        let docs = yaml::parse_all(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  v: ${VAR}\n  d: ${MISSING:=dflt}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  v: ${VAR}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: c\nspec:\n  replicas: ${REPLICAS}\n",
        )
        .unwrap();
        let vars: BTreeMap<String, String> = [
            ("VAR".into(), "hello".into()),
            ("REPLICAS".into(), "3".into()),
        ]
        .into();
        let out = substitute(docs, Some(&vars)).unwrap();
        assert_eq!(out[0]["data"]["v"], "hello");
        assert_eq!(out[0]["data"]["d"], "dflt");
        assert_eq!(out[1]["data"]["v"], "${VAR}");
        assert_eq!(out[2]["spec"]["replicas"], 3);
    }

    #[test]
    fn the_generated_kustomization_reads_nothing_outside_the_artifact() {
        use std::os::unix::fs::symlink;
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("artifact");
        write(outer.path(), "secret.yaml", &CM.replace("NAME", "secret"));
        write(&root, "apps/a.yaml", &CM.replace("NAME", "a"));
        symlink(outer.path().join("secret.yaml"), root.join("apps/b.yaml")).unwrap();
        let e = write_kustomization(&root.join("apps"), &spec()).unwrap_err();
        assert!(e.contains("outside the source root"), "{e}");
        assert!(!e.contains("name: secret"), "{e}");

        // A device named like a manifest is refused before it is read.
        std::fs::remove_file(root.join("apps/b.yaml")).unwrap();
        symlink("/dev/zero", root.join("apps/zero.yaml")).unwrap();
        let e = write_kustomization(&root.join("apps"), &spec()).unwrap_err();
        assert!(e.contains("outside the source root"), "{e}");

        // spec.path through a symlink out of the artifact.
        symlink(outer.path(), root.join("out")).unwrap();
        let e = resolve_path(&root, Some("./out")).unwrap_err();
        assert!(e.contains("leaves the artifact root"), "{e}");
    }

    #[test]
    fn substitutions_are_bounded_together() {
        // Each object grows by 2 * 5^8 - 1 bytes (0.75 MiB): fine alone,
        // over the build's bound at about 86 objects.
        let mut bomb = String::from("X");
        for _ in 0..8 {
            bomb = format!("${{cluster///{bomb}}}");
        }
        let mut docs = String::new();
        for i in 0..100 {
            docs.push_str(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  v: {bomb}\n---\n"
            ));
        }
        let objects = yaml::parse_all(&docs).unwrap();
        let objects: Vec<Yaml> = objects.into_iter().filter(|o| !o.is_null()).collect();
        let vars: BTreeMap<String, String> = [("cluster".into(), "prod".into())].into();
        assert!(substitute(objects[..10].to_vec(), Some(&vars)).is_ok());
        let e = substitute(objects, Some(&vars)).unwrap_err();
        assert!(
            e.contains("substitutions add more than 67108864 bytes"),
            "{e}"
        );
    }

    #[test]
    fn paths_stay_inside_the_artifact() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("apps")).unwrap();
        assert_eq!(
            resolve_path(d.path(), Some("./apps")).unwrap(),
            d.path().join("apps")
        );
        assert_eq!(resolve_path(d.path(), None).unwrap(), d.path());
        assert!(resolve_path(d.path(), Some("../..")).is_err());
        assert!(
            resolve_path(d.path(), Some("./nope"))
                .unwrap_err()
                .contains("kustomization path not found")
        );
    }

    #[test]
    fn generator_sources_are_decrypted_in_place_inside_the_root_only() {
        let enc = include_str!("../../sluice-sops/testdata/app.sops.env");
        let ids =
            sluice_sops::Identities::parse(include_str!("../../sluice-sops/testdata/test.agekey"))
                .unwrap();
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("artifact");
        write(outer.path(), "outside.env", enc);
        write(&root, "apps/a.env", enc);
        write(&root, "apps/comp/c.env", enc);
        write(&root, "apps/plain.env", "A=1\n");
        std::os::unix::fs::symlink(outer.path().join("outside.env"), root.join("apps/link.env"))
            .unwrap();
        write(
            &root,
            "apps/kustomization.yaml",
            "components:\n- comp\nsecretGenerator:\n- name: s\n  envs:\n  - a.env\n  - plain.env\n  - ../../outside.env\n  - link.env\n  - missing.env\n",
        );
        write(
            &root,
            "apps/comp/kustomization.yaml",
            "kind: Component\nsecretGenerator:\n- name: c\n  envs:\n  - c.env\n",
        );
        decrypt_sources(&root, &root.join("apps"), &ids).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert!(read(&root.join("apps/a.env")).starts_with("DB_USER=app\n"));
        assert!(read(&root.join("apps/comp/c.env")).starts_with("DB_USER=app\n"));
        assert_eq!(read(&root.join("apps/plain.env")), "A=1\n");
        // Outside the root, directly or through a symlink: untouched.
        assert_eq!(read(&outer.path().join("outside.env")), enc);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(root.join("apps/a.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_secret_still_encrypted_is_refused_before_apply() {
        let secret = |sops: bool, annotations: Value| {
            let mut o = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "apps", "annotations": annotations},
                "data": {"password": "ENC[AES256_GCM,data:xx,type:str]"},
            });
            if sops {
                o["sops"] = serde_json::json!({"mac": "ENC[...]", "age": []});
            }
            o
        };
        let none = serde_json::json!({});
        let err =
            refuse_encrypted_secrets(&[secret(false, none.clone()), secret(true, none.clone())])
                .unwrap_err();
        assert_eq!(
            err,
            "Secret/apps/db is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
        );
        // Decrypted (no sops block), or decryption turned off for it: applied.
        assert!(refuse_encrypted_secrets(&[secret(false, none)]).is_ok());
        let off = serde_json::json!({DECRYPT_ANNOTATION: "Disabled"});
        assert!(refuse_encrypted_secrets(&[secret(true, off)]).is_ok());
        // Only v1 Secrets, as Flux: another kind with a sops block is applied.
        let mut cm = secret(true, serde_json::json!({}));
        cm["kind"] = "ConfigMap".into();
        assert!(refuse_encrypted_secrets(&[cm]).is_ok());
    }
}
