//! Loading: the kustomization file of a directory, files relative to a
//! kustomization root (load restriction, jail, byte limits), and resource
//! streams.

use super::*;

/// File access relative to one kustomization root, with kustomize's load
/// restriction and the build's [`Guard`] (jail, byte limits, deadline).
#[derive(Clone, Debug)]
pub struct Loader {
    pub root: PathBuf,
    pub restrict: bool,
    guard: Rc<Guard>,
    /// Whether the guard's jail applies (not inside a remote checkout,
    /// which `restrict` confines to itself).
    jailed: bool,
}

impl Loader {
    pub fn resolve(&self, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// Canonical path of a file that may be read under the restriction.
    pub fn check_file(&self, rel: &str) -> Result<PathBuf> {
        let p = self.resolve(rel);
        let canon = std::fs::canonicalize(&p)
            .map_err(|e| Error::msg(format!("evalsymlink failure on '{}' : {e}", p.display())))?;
        if self.jailed {
            self.guard.contain(&canon, rel)?;
        }
        if self.restrict && !canon.starts_with(&self.root) {
            return Err(Error::msg(format!(
                "security; file '{}' is not in or below '{}'",
                canon.display(),
                self.root.display()
            )));
        }
        Ok(canon)
    }

    pub fn read_bytes(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.resolve(rel);
        if !p.exists() {
            return Err(Error::msg(format!("'{}' doesn't exist", p.display())));
        }
        let canon = self.check_file(rel)?;
        if canon.is_dir() {
            return Err(Error::msg(format!(
                "'{}' is a directory, not a file",
                p.display()
            )));
        }
        self.guard.read(&canon, rel)
    }

    /// Counts bytes a patch copies into objects against the build's limit.
    pub(crate) fn charge_patch(&self, bytes: usize, what: &str) -> Result<()> {
        self.guard.charge_patch(bytes as u64, what)
    }

    pub fn read_string(&self, rel: &str) -> Result<String> {
        let b = self.read_bytes(rel)?;
        String::from_utf8(b).map_err(|_| Error::msg(format!("'{rel}' is not valid UTF-8")))
    }
}

/// Finds and parses the kustomization file in `dir`, reading it through
/// `guard` (jailed unless `dir` is inside a remote checkout).
pub(super) fn load_kustomization(
    dir: &Path,
    guard: &Guard,
    jailed: bool,
) -> Result<(Kustomization, String)> {
    let mut found = Vec::new();
    for n in KUSTOMIZATION_FILE_NAMES {
        let p = dir.join(n);
        if p.is_file() {
            found.push(p);
        }
    }
    if found.len() > 1 {
        return Err(Error::msg(format!(
            "Found multiple kustomization files under: {}",
            dir.display()
        )));
    }
    let Some(p) = found.pop() else {
        return Err(Error::msg(format!(
            "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
            dir.display()
        )));
    };
    let shown = p.display().to_string();
    let canon = std::fs::canonicalize(&p)
        .map_err(|e| Error::msg(format!("evalsymlink failure on '{shown}' : {e}")))?;
    if jailed {
        guard.contain(&canon, &shown)?;
    } else if !canon.starts_with(dir) {
        return Err(Error::Security(format!(
            "security; file '{}' is not in or below '{}'",
            canon.display(),
            dir.display()
        )));
    }
    let text = String::from_utf8(guard.read(&canon, &shown)?)
        .map_err(|_| Error::msg(format!("'{shown}' is not valid UTF-8")))?;
    let file_name = p
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok((
        Kustomization::parse(&text, &p.display().to_string())?,
        file_name,
    ))
}

/// Parses a YAML stream of resources, flattening `List` kinds.
pub fn resources_from_text(text: &str, file: &str) -> Result<Vec<Resource>> {
    let docs = crate::yaml::parse_resources_noting_empty(text).map_err(|e| Error::yaml(file, e))?;
    let mut out = Vec::new();
    for (d, empty) in docs {
        push_resource_value(d, empty, file, &mut out)?;
    }
    Ok(out)
}

pub(crate) fn push_resource_value(
    d: Value,
    empty: crate::yaml::EmptyNulls,
    file: &str,
    out: &mut Vec<Resource>,
) -> Result<()> {
    match d {
        Value::Null => Ok(()),
        Value::Map(m) if m.is_empty() => Ok(()),
        Value::Map(m) => {
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with("List")
                && matches!(m.get("items"), Some(Value::Seq(_)) | Some(Value::Null))
            {
                if let Some(Value::Seq(items)) = m.get("items") {
                    // kustomize reads a List's items through JSON: a field
                    // with no value is an explicit null there.
                    for it in items.clone() {
                        push_resource_value(it, Vec::new(), file, out)?;
                    }
                }
                return Ok(());
            }
            if !m.contains("kind") || kind.is_empty() {
                return Err(Error::msg(format!(
                    "missing Resource metadata: 'kind' is required in {file}"
                )));
            }
            let md = m.get("metadata");
            let name = md
                .and_then(|md| md.get("name"))
                .and_then(Value::scalar_string);
            if name.as_deref().unwrap_or("").is_empty() {
                return Err(Error::msg(format!(
                    "missing metadata.name in object {}",
                    go_object_dump(&m)
                )));
            }
            let mut r = Resource::new(Value::Map(m));
            r.empty_nulls = empty;
            out.push(r);
            Ok(())
        }
        other => Err(Error::msg(format!(
            "expected a mapping (a Kubernetes object) in {file}, got a {}",
            other.kind_name()
        ))),
    }
}

/// How kustomize prints an object it cannot name: Go's `%v` of its type
/// and metadata, `{{apiVersion kind} {{name namespace} labels annotations}}`.
pub(super) fn go_object_dump(m: &Map) -> String {
    let text = |v: Option<&Value>| v.and_then(Value::scalar_string).unwrap_or_default();
    let md = m.get("metadata");
    let go_map = |key: &str| {
        let mut pairs: Vec<String> = match md.and_then(|md| md.get(key)) {
            Some(Value::Map(kv)) => kv
                .iter()
                .map(|(k, v)| format!("{k}:{}", v.scalar_string().unwrap_or_default()))
                .collect(),
            _ => Vec::new(),
        };
        pairs.sort();
        format!("map[{}]", pairs.join(" "))
    };
    format!(
        "{{{{{} {}}} {{{{{} {}}} {} {}}}}}",
        text(m.get("apiVersion")),
        text(m.get("kind")),
        text(md.and_then(|md| md.get("name"))),
        text(md.and_then(|md| md.get("namespace"))),
        go_map("labels"),
        go_map("annotations"),
    )
}

pub(super) fn looks_remote(s: &str) -> bool {
    s.contains("://")
        || s.starts_with("github.com/")
        || s.starts_with("git@")
        || s.starts_with("gitlab.com/")
        || s.starts_with("bitbucket.org/")
}

pub(super) fn kustomization_file_name(dir: &Path) -> String {
    for n in KUSTOMIZATION_FILE_NAMES {
        if dir.join(n).is_file() {
            return n.to_string();
        }
    }
    "kustomization.yaml".into()
}

impl Builder {
    pub(super) fn loader(&self, dir: &Path) -> Loader {
        Loader {
            root: dir.to_path_buf(),
            // As kustomize: a loader inside a remote checkout is always
            // LoadRestrictionsRootOnly, whatever the caller chose.
            restrict: self.opts.load_restrict_root_only || !self.repos.is_empty(),
            guard: self.guard.clone(),
            jailed: self.repos.is_empty(),
        }
    }

    pub(super) fn load_kustomization(&mut self, dir: &Path) -> Result<(Kustomization, String)> {
        let loaded = load_kustomization(dir, &self.guard, self.repos.is_empty())?;
        if let Some(w) = &loaded.0.repeated_key
            && !self.warnings.contains(w)
        {
            self.warnings.push(w.clone());
        }
        Ok(loaded)
    }

    /// The kustomization file of `ldr`'s root, for error messages.
    pub(super) fn kustomization_path(&self, ldr: &Loader) -> String {
        ldr.root
            .join(kustomization_file_name(&ldr.root))
            .display()
            .to_string()
    }
}
