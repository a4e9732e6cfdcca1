//! What one build may touch and spend: the directory it may read from (the
//! jail), how much it may read and produce, how deep it may nest, and until
//! when it may run.
//!
//! kustomize itself has none of this beyond `LoadRestrictionsRootOnly`; a
//! GitOps controller builds whatever a repository holds, with the rights of
//! its service account, so every file the build opens is checked here:
//! its real path (symlinks resolved) must be inside the jail, it must be a
//! regular file (a FIFO would block, a device would never end), and it
//! must fit the byte limits. Errors name the file as the kustomization
//! wrote it and the rule that refused it.

use std::cell::Cell;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::{Error, Result};

/// Bounds of one build. The defaults are sized for the controller's memory
/// limit (512 MiB shared by a few concurrent builds) and are far above
/// what real repositories need (the largest upstream installs are a few
/// MiB of YAML and a few thousand objects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest single file read (manifest, patch, generator source).
    pub max_file_bytes: u64,
    /// All files read by one build together.
    pub max_total_bytes: u64,
    /// Nested kustomization directories (resources, components), counted
    /// from the built directory. Bounds the recursion and so the stack.
    pub max_depth: usize,
    /// Objects held by the build at any time.
    pub max_resources: usize,
}

/// Default [`Limits::max_file_bytes`]: 16 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Default [`Limits::max_total_bytes`]: 64 MiB.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Default [`Limits::max_depth`].
pub const MAX_DEPTH: usize = 40;
/// Default [`Limits::max_resources`].
pub const MAX_RESOURCES: usize = 50_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: MAX_FILE_BYTES,
            max_total_bytes: MAX_TOTAL_BYTES,
            max_depth: MAX_DEPTH,
            max_resources: MAX_RESOURCES,
        }
    }
}

/// The checks of one build, shared by its loaders.
#[derive(Debug)]
pub(crate) struct Guard {
    /// Canonical directory every local path must stay in.
    jail: Option<PathBuf>,
    pub(crate) limits: Limits,
    deadline: Option<Instant>,
    read: Cell<u64>,
}

impl Guard {
    pub(crate) fn new(
        jail: Option<&Path>,
        limits: Limits,
        deadline: Option<Instant>,
    ) -> Result<Guard> {
        let jail = match jail {
            Some(j) => Some(std::fs::canonicalize(j).map_err(|e| {
                Error::msg(format!("resolving the build root '{}': {e}", j.display()))
            })?),
            None => None,
        };
        Ok(Guard {
            jail,
            limits,
            deadline,
            read: Cell::new(0),
        })
    }

    /// A guard without a jail (each build replaces it with its own).
    pub(crate) fn unjailed(limits: Limits, deadline: Option<Instant>) -> Guard {
        Guard {
            jail: None,
            limits,
            deadline,
            read: Cell::new(0),
        }
    }

    /// Time left until the deadline, if there is one.
    pub(crate) fn time_left(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Refuses `canon` (a path with every symlink resolved) when it is
    /// outside the jail. `shown` is the path as the kustomization wrote it.
    pub(crate) fn contain(&self, canon: &Path, shown: &str) -> Result<()> {
        match &self.jail {
            Some(j) if !canon.starts_with(j) => Err(Error::Security(format!(
                "security; '{shown}' resolves to '{}', outside the source root '{}': \
                 a build may only read files inside its source",
                canon.display(),
                j.display()
            ))),
            _ => Ok(()),
        }
    }

    /// Fails once the build's deadline has passed.
    pub(crate) fn tick(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(Error::Limit(
                "build deadline exceeded (the Kustomization's timeout)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Reads the regular file at `canon` (already contained), within the
    /// per-file and per-build byte limits.
    pub(crate) fn read(&self, canon: &Path, shown: &str) -> Result<Vec<u8>> {
        self.tick()?;
        let data = read_regular_file(canon, shown, self.limits.max_file_bytes)?;
        let total = self.read.get() + data.len() as u64;
        if total > self.limits.max_total_bytes {
            return Err(Error::Limit(format!(
                "reading '{shown}': the build has read {total} bytes, over its limit of {} bytes",
                self.limits.max_total_bytes
            )));
        }
        self.read.set(total);
        Ok(data)
    }

    pub(crate) fn check_depth(&self, depth: usize, dir: &Path) -> Result<()> {
        if depth > self.limits.max_depth {
            return Err(Error::Limit(format!(
                "'{}': kustomizations nested more than {} levels deep",
                dir.display(),
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    pub(crate) fn check_resources(&self, count: usize) -> Result<()> {
        if count > self.limits.max_resources {
            return Err(Error::Limit(format!(
                "the build holds {count} objects, over its limit of {}",
                self.limits.max_resources
            )));
        }
        Ok(())
    }
}

/// Reads `path` if it is a regular file of at most `max` bytes. Anything
/// else (a FIFO, a socket, a device, a directory) is refused before it is
/// opened, so nothing blocks or streams forever. `shown` names the file in
/// errors.
pub fn read_regular_file(path: &Path, shown: &str, max: u64) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).map_err(|e| Error::msg(format!("reading '{shown}': {e}")))?;
    if meta.is_dir() {
        return Err(Error::msg(format!("'{shown}' is a directory, not a file")));
    }
    if !meta.is_file() {
        return Err(Error::Security(format!(
            "security; '{shown}' is not a regular file (a device, FIFO or socket): refused"
        )));
    }
    if meta.len() > max {
        return Err(Error::Limit(format!(
            "'{shown}' is {} bytes, over the limit of {max} bytes for one file",
            meta.len()
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::msg(format!("reading '{shown}': {e}")))?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    // The size may have changed since the stat: never read past the limit.
    f.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::msg(format!("reading '{shown}': {e}")))?;
    if data.len() as u64 > max {
        return Err(Error::Limit(format!(
            "'{shown}' is over the limit of {max} bytes for one file"
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_paths_and_refuses_special_files() {
        let d = tempfile::tempdir().unwrap();
        let g = Guard::new(Some(d.path()), Limits::default(), None).unwrap();
        let inside = d.path().canonicalize().unwrap().join("a.yaml");
        g.contain(&inside, "a.yaml").unwrap();
        let e = g
            .contain(Path::new("/etc/passwd"), "../../etc/passwd")
            .unwrap_err();
        assert!(e.to_string().contains("outside the source root"), "{e}");
        let e = read_regular_file(Path::new("/dev/zero"), "zero", 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::write(&inside, "x".repeat(11)).unwrap();
        let e = read_regular_file(&inside, "a.yaml", 10).unwrap_err();
        assert!(e.to_string().contains("over the limit of 10 bytes"), "{e}");
    }

    #[test]
    fn counts_bytes_over_the_whole_build() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        std::fs::write(&p, "12345").unwrap();
        let limits = Limits {
            max_total_bytes: 12,
            ..Limits::default()
        };
        let g = Guard::new(None, limits, None).unwrap();
        g.read(&p, "a").unwrap();
        g.read(&p, "a").unwrap();
        let e = g.read(&p, "a").unwrap_err();
        assert!(e.to_string().contains("over its limit of 12 bytes"), "{e}");
    }

    #[test]
    fn deadline() {
        let g = Guard::new(None, Limits::default(), Some(Instant::now())).unwrap();
        assert!(g.tick().unwrap_err().to_string().contains("deadline"));
    }
}
