//! Which files of a checkout go into the artifact, as Flux's `sourceignore`
//! package decides: the default exclusions, then every `.sourceignore` file
//! in the tree (scoped to its directory), then `spec.ignore`. Later rules win,
//! so `spec.ignore` can re-include (`!*.png`) what a default excluded.

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The name of the in-tree ignore file.
pub const IGNORE_FILE: &str = ".sourceignore";

/// Version control files (`ExcludeVCS`).
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];
/// Binary and archive extensions (`ExcludeExt`).
pub const EXCLUDE_EXT: &[&str] = &[
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
];
/// CI configuration (`ExcludeCI`).
pub const EXCLUDE_CI: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
];
/// Tool configuration (`ExcludeExtra`).
pub const EXCLUDE_EXTRA: &[&str] = &["**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"];

/// A layered gitignore matcher over paths relative to the repository root.
pub struct IgnoreRules {
    /// Lowest priority first; each layer is scoped to a directory prefix
    /// (`""` for the root).
    layers: Vec<(String, Gitignore)>,
}

impl IgnoreRules {
    /// No rules: nothing is ignored until lines are pushed (a Bucket's
    /// listing, which Flux filters by its `.sourceignore` object and
    /// `spec.ignore` only, without the defaults).
    pub fn none() -> IgnoreRules {
        IgnoreRules { layers: Vec::new() }
    }

    /// Whether the object `key` (`/`-separated) is excluded, or one of the
    /// directories it is under is: a key names a file, and a rule such as
    /// `dir/` must exclude what is under `dir` although no directory entry
    /// is ever seen (go-git's matcher compares a rule with every prefix of
    /// the path).
    pub fn is_key_ignored(&self, key: &str) -> bool {
        let mut at = 0;
        while let Some(i) = key[at..].find('/') {
            let end = at + i;
            if end > 0 && self.is_ignored(&key[..end], true) {
                return true;
            }
            at = end + 1;
        }
        self.is_ignored(key, false)
    }

    /// Flux's defaults only.
    pub fn defaults() -> IgnoreRules {
        let mut rules = IgnoreRules { layers: Vec::new() };
        let all: Vec<&str> = EXCLUDE_VCS
            .iter()
            .chain(EXCLUDE_EXT)
            .chain(EXCLUDE_CI)
            .chain(EXCLUDE_EXTRA)
            .copied()
            .collect();
        rules.push_lines("", &all.join("\n"));
        rules
    }

    /// Defaults, then the given `.sourceignore` files (`(dir, contents)`,
    /// `dir` relative without trailing slash, `""` for the root; parents
    /// before children), then `spec.ignore`.
    pub fn new(sourceignores: &[(String, String)], spec_ignore: Option<&str>) -> IgnoreRules {
        let mut rules = IgnoreRules::defaults();
        for (dir, contents) in sourceignores {
            rules.push_lines(dir, contents);
        }
        if let Some(extra) = spec_ignore {
            rules.push_lines("", extra);
        }
        rules
    }

    /// Adds a layer of rules scoped to `dir`. Invalid lines are skipped, as
    /// go-git's parser does.
    pub fn push_lines(&mut self, dir: &str, contents: &str) {
        let mut b = GitignoreBuilder::new("/");
        for line in contents.lines() {
            let t = line.trim_end_matches('\r');
            if t.trim().is_empty() || t.starts_with('#') {
                continue;
            }
            let _ = b.add_line(None, t);
        }
        if let Ok(gi) = b.build() {
            self.layers.push((dir.trim_matches('/').to_string(), gi));
        }
    }

    /// Whether `path` (relative, `/`-separated) is excluded. The last layer
    /// with an opinion decides.
    pub fn is_ignored(&self, path: &str, is_dir: bool) -> bool {
        for (dir, gi) in self.layers.iter().rev() {
            let rel = if dir.is_empty() {
                path
            } else {
                match path
                    .strip_prefix(dir.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(r) => r,
                    None => continue,
                }
            };
            match gi.matched(rel, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_exclude_flux_list() {
        let r = IgnoreRules::defaults();
        for p in [
            ".gitignore",
            "sub/.gitignore",
            ".gitmodules",
            ".gitattributes",
            "logo.png",
            "docs/img/a.jpg",
            "release.tar.gz",
            "x.zip",
            ".travis.yml",
            ".gitlab-ci.yml",
            "appveyor.yml",
            ".drone.yml",
            "cloudbuild.yaml",
            "codeship-services.yml",
            "codeship-steps.yml",
            ".goreleaser.yml",
            "deep/dir/.sops.yaml",
            "apps/.flux.yaml",
        ] {
            assert!(r.is_ignored(p, false), "{p} should be excluded");
        }
        assert!(r.is_ignored(".git", true));
        assert!(r.is_ignored(".github", true));
        assert!(r.is_ignored("sub/.circleci", true));
        for p in [
            "kustomization.yaml",
            "apps/deploy.yaml",
            "README.md",
            ".github",
            "tar.gz.yaml",
        ] {
            assert!(!r.is_ignored(p, false), "{p} should be kept");
        }
    }

    #[test]
    fn sourceignore_is_scoped_to_its_directory() {
        let r = IgnoreRules::new(
            &[
                ("".into(), "/secret.yaml\n# comment\n*.bak\n".into()),
                ("apps".into(), "local/\n/only-here.yaml\n".into()),
            ],
            None,
        );
        assert!(r.is_ignored("secret.yaml", false));
        assert!(
            !r.is_ignored("apps/secret.yaml", false),
            "anchored to the root"
        );
        assert!(r.is_ignored("apps/x.bak", false));
        assert!(r.is_ignored("apps/local", true));
        assert!(r.is_ignored("apps/only-here.yaml", false));
        assert!(!r.is_ignored("only-here.yaml", false), "scoped to apps/");
        assert!(!r.is_ignored("local", true), "scoped to apps/");
    }

    #[test]
    fn spec_ignore_comes_last_and_can_reinclude() {
        let r = IgnoreRules::new(
            &[("".into(), "*.txt\n".into())],
            Some("!keep.txt\n/drafts/\n!logo.png\n"),
        );
        assert!(r.is_ignored("notes.txt", false));
        assert!(!r.is_ignored("keep.txt", false));
        assert!(r.is_ignored("drafts", true));
        assert!(!r.is_ignored("logo.png", false));
        assert!(r.is_ignored("other.png", false));
    }
}
