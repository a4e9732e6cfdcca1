//! The engine against hostile or careless input, with the options a
//! controller uses (a jail at the source root, no load restriction): no
//! file outside the jail is read, nothing blocks, nothing grows without
//! bound, deep nesting fails cleanly on a 2 MiB stack.

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_kustomize::{Error, Options, build};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A source root `<tmp>/src` with a secret file beside it, outside.
struct Tree {
    tmp: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "secret/token", "TOP-SECRET-TOKEN\n");
        std::fs::create_dir_all(tmp.path().join("src")).unwrap();
        Tree { tmp }
    }
    fn root(&self) -> std::path::PathBuf {
        self.tmp.path().join("src")
    }
    fn secret(&self) -> String {
        self.tmp.path().join("secret/token").display().to_string()
    }
    fn write(&self, rel: &str, text: &str) {
        write(&self.root(), rel, text);
    }
    fn controller_opts(&self) -> Options {
        let mut o = Options::new();
        o.load_restrict_root_only = false;
        o.jail = Some(self.root());
        o
    }
    fn build(&self) -> Result<String, Error> {
        build(&self.root(), &self.controller_opts()).map(|o| o.to_yaml())
    }
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: b\n";

fn refused(t: &Tree) -> String {
    let e = t.build().expect_err("the build must be refused");
    let msg = e.to_string();
    assert!(!msg.contains("TOP-SECRET"), "{msg}");
    assert!(matches!(e, Error::Security(_)), "{e:?}");
    msg
}

#[test]
fn generator_sources_outside_the_root_are_refused() {
    let t = Tree::new();
    t.write(
        "kustomization.yaml",
        &format!(
            "secretGenerator:\n- name: s\n  files:\n  - token={}\n",
            t.secret()
        ),
    );
    let msg = refused(&t);
    assert!(msg.contains("outside the source root"), "{msg}");
    // The same tree builds with the CLI's defaults (LoadRestrictionsRootOnly
    // refuses it too, with kustomize's message).
    let e = build(&t.root(), &Options::new()).unwrap_err();
    assert!(e.to_string().contains("is not in or below"), "{e}");

    let t = Tree::new();
    t.write(
        "kustomization.yaml",
        "configMapGenerator:\n- name: c\n  envs:\n  - ../secret/token\n",
    );
    refused(&t);
}

#[test]
fn resources_patches_and_configurations_outside_the_root_are_refused() {
    for kus in [
        "resources:\n- ../secret/token\n",
        "resources:\n- cm.yaml\npatches:\n- path: ../secret/token\n",
        "resources:\n- cm.yaml\nconfigurations:\n- ../secret/token\n",
        "resources:\n- cm.yaml\ncrds:\n- ../secret/token\n",
        "resources:\n- cm.yaml\nreplacements:\n- path: ../secret/token\n",
        "resources:\n- ../secret\n",
        "resources:\n- cm.yaml\ncomponents:\n- ../secret\n",
    ] {
        let t = Tree::new();
        t.write("cm.yaml", CM);
        write(
            t.tmp.path(),
            "secret/kustomization.yaml",
            "resources: [token]\n",
        );
        t.write("kustomization.yaml", kus);
        let msg = refused(&t);
        assert!(msg.contains("outside the source root"), "{kus}: {msg}");
    }
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    use std::os::unix::fs::symlink;
    let t = Tree::new();
    t.write("kustomization.yaml", "resources:\n- link.yaml\n");
    symlink(t.secret(), t.root().join("link.yaml")).unwrap();
    refused(&t);

    // A directory symlink.
    let t = Tree::new();
    write(t.tmp.path(), "secret/kustomization.yaml", "resources: []\n");
    t.write("kustomization.yaml", "resources:\n- base\n");
    symlink(t.tmp.path().join("secret"), t.root().join("base")).unwrap();
    refused(&t);

    // The kustomization file itself.
    let t = Tree::new();
    write(t.tmp.path(), "secret/kustomization.yaml", "resources: []\n");
    symlink(
        t.tmp.path().join("secret/kustomization.yaml"),
        t.root().join("kustomization.yaml"),
    )
    .unwrap();
    refused(&t);

    // A symlink inside the root to a file inside the root is fine.
    let t = Tree::new();
    t.write("real.yaml", CM);
    t.write("kustomization.yaml", "resources:\n- alias.yaml\n");
    symlink(t.root().join("real.yaml"), t.root().join("alias.yaml")).unwrap();
    assert!(t.build().unwrap().contains("name: cm"));
}

#[test]
fn devices_and_fifos_are_refused_without_blocking() {
    // No jail (the CLI with LoadRestrictionsNone): the file type check alone.
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "kustomization.yaml",
        "configMapGenerator:\n- name: z\n  files:\n  - z=/dev/zero\n",
    );
    let mut o = Options::new();
    o.load_restrict_root_only = false;
    let e = build(d.path(), &o).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");

    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    write(d.path(), "kustomization.yaml", "resources:\n- pipe.yaml\n");
    let started = Instant::now();
    let e = build(d.path(), &o).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn absolute_directory_bases_are_refused_as_kustomize_does() {
    let t = Tree::new();
    write(t.tmp.path(), "other/kustomization.yaml", "resources: []\n");
    let other = t.tmp.path().join("other").display().to_string();
    t.write("kustomization.yaml", &format!("resources:\n- {other}\n"));
    for restrict in [true, false] {
        let mut o = Options::new();
        o.load_restrict_root_only = restrict;
        let e = build(&t.root(), &o).unwrap_err().to_string();
        assert!(
            e.contains(&format!("new root '{other}' cannot be absolute")),
            "{e}"
        );
    }
}

#[test]
fn oversized_files_and_builds_are_refused() {
    let t = Tree::new();
    t.write("kustomization.yaml", "resources:\n- big.yaml\n");
    let big = format!("{CM}  pad: {}\n", "x".repeat(17 << 20));
    t.write("big.yaml", &big);
    let e = t.build().unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("over the limit"), "{e}");

    // Many reads of one file count against the build's total.
    let t = Tree::new();
    t.write("data.txt", &"x".repeat(1 << 20));
    let files: Vec<String> = (0..100).map(|i| format!("  - k{i}=data.txt")).collect();
    t.write(
        "kustomization.yaml",
        &format!(
            "configMapGenerator:\n- name: c\n  files:\n{}\n",
            files.join("\n")
        ),
    );
    let e = t.build().unwrap_err();
    assert!(e.to_string().contains("over its limit"), "{e}");
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let t = Tree::new();
    let mut doc = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a0: &a0 \"lol\"\n",
    );
    // Billion laughs, nested.
    let mut doc2 = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        doc2.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    doc.push_str("  x: |\n    y\n");
    t.write("cm.yaml", &doc);
    t.write(
        "lol.yaml",
        &format!("apiVersion: v1\nkind: List\nmetadata:\n  name: l\n{doc2}"),
    );
    // A large string aliased many times.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  s: &s {}\nbinaryData: [{}]\n",
        "x".repeat(512 << 10),
        vec!["*s"; 100_000].join(",")
    );
    t.write("big.yaml", &big);
    // Documents each under the budget, which is the whole file's.
    let part = |i: usize| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p{i}\ndata:\n  s: &s {}\nbinaryData: [{}]\n",
            "x".repeat(64 << 10),
            vec!["*s"; 100].join(",")
        )
    };
    let parts: Vec<String> = (0..100).map(part).collect();
    t.write("parts.yaml", &parts.join("---\n"));
    for r in ["lol.yaml", "big.yaml", "parts.yaml"] {
        t.write("kustomization.yaml", &format!("resources:\n- {r}\n"));
        let started = Instant::now();
        let e = t.build().unwrap_err().to_string();
        assert!(e.contains("expands aliases too much"), "{r}: {e}");
        assert!(started.elapsed() < Duration::from_secs(10), "{r}");
    }
}

/// Nested kustomization directories, each a base of the one above.
fn nest(root: &Path, depth: usize) {
    let mut dir = root.to_path_buf();
    for _ in 0..depth {
        write(&dir, "kustomization.yaml", "resources:\n- sub\n");
        dir = dir.join("sub");
    }
    write(&dir, "kustomization.yaml", "resources:\n- cm.yaml\n");
    write(&dir, "cm.yaml", CM);
}

#[test]
fn deep_nesting_fails_cleanly_on_a_small_stack() {
    let t = Tree::new();
    nest(&t.root(), 200);
    let opts = t.controller_opts();
    let root = t.root();
    // tokio's blocking threads have 2 MiB stacks.
    let e = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || build(&root, &opts).map(|_| ()))
        .unwrap()
        .join()
        .expect("no stack overflow")
        .unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("nested more than 40 levels"), "{e}");

    // The deepest nesting allowed builds on the same stack.
    let t = Tree::new();
    nest(&t.root(), 39);
    let opts = t.controller_opts();
    let root = t.root();
    let out = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || build(&root, &opts).map(|o| o.resources.len()))
        .unwrap()
        .join()
        .expect("no stack overflow")
        .unwrap();
    assert_eq!(out, 1);
}

#[test]
fn cycles_and_diamonds_are_bounded() {
    let t = Tree::new();
    t.write("kustomization.yaml", "resources:\n- a\n");
    t.write("a/kustomization.yaml", "resources:\n- ../b\n");
    t.write("b/kustomization.yaml", "resources:\n- ../a\n");
    let e = t.build().unwrap_err().to_string();
    assert!(e.contains("cycle detected"), "{e}");

    // Each level includes the next ten times under other prefixes: 10^6
    // objects if nothing stopped it.
    let t = Tree::new();
    for level in 0..6 {
        let dir = format!("l{level}");
        let mut k = String::from("resources:\n");
        for i in 0..10 {
            k.push_str(&format!("- p{i}\n"));
            t.write(
                &format!("{dir}/p{i}/kustomization.yaml"),
                &format!("namePrefix: p{i}-\nresources:\n- ../../l{}\n", level + 1),
            );
        }
        t.write(&format!("{dir}/kustomization.yaml"), &k);
    }
    t.write("l6/kustomization.yaml", "resources:\n- cm.yaml\n");
    t.write("l6/cm.yaml", CM);
    t.write("kustomization.yaml", "resources:\n- l0\n");
    let mut o = t.controller_opts();
    o.limits.max_resources = 2_000;
    let started = Instant::now();
    let e = build(&t.root(), &o).unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("over its limit of 2000"), "{e}");
    // Bounded: an unbounded walk of this diamond would not end; the
    // margin allows for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn a_build_stops_at_its_deadline() {
    let t = Tree::new();
    t.write("kustomization.yaml", "resources:\n- cm.yaml\n");
    t.write("cm.yaml", CM);
    let mut o = t.controller_opts();
    o.deadline = Some(Instant::now());
    let e = build(&t.root(), &o).unwrap_err();
    assert!(e.to_string().contains("deadline exceeded"), "{e}");
}

/// Objects without a name and empty entries are refused with kustomize
/// v5.8.1's messages (sluice used to accept the first and loop on the
/// second as a cycle).
#[test]
fn nameless_objects_and_empty_entries_are_refused_as_kustomize_does() {
    let t = Tree::new();
    t.write(
        "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  namespace: ns1\n  annotations: {z: \"1\", b: \"2\"}\n  labels: {x: y, a: b}\n",
    );
    t.write("kustomization.yaml", "resources:\n- d.yaml\n");
    let e = t.build().unwrap_err().to_string();
    let want = "accumulating resources: accumulation err='accumulating resources from 'd.yaml': missing metadata.name in object {{apps/v1 Deployment} {{ ns1} map[a:b x:y] map[b:2 z:1]}}': must build at directory: '";
    assert!(e.starts_with(want), "{e}");

    let t = Tree::new();
    t.write(
        "l.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {namespace: q, name: \"\"}\n",
    );
    t.write("kustomization.yaml", "resources:\n- l.yaml\n");
    let e = t.build().unwrap_err().to_string();
    assert!(
        e.contains("missing metadata.name in object {{v1 ConfigMap} {{ q} map[] map[]}}"),
        "{e}"
    );

    let t = Tree::new();
    t.write("cm.yaml", CM);
    t.write("kustomization.yaml", "resources:\n- cm.yaml\n-\n");
    let e = t.build().unwrap_err().to_string();
    assert!(
        e.starts_with(
            "accumulating resources: accumulation err='accumulating resources from '': '"
        ) && e.ends_with("' must resolve to a file': new root cannot be empty"),
        "{e}"
    );
}

#[test]
fn remote_entries_are_named_without_their_credentials() {
    let t = Tree::new();
    for entry in [
        "https://ghp_SECRETTOKEN@127.0.0.1:1/fleet.git",
        "https://me:SECRETTOKEN@127.0.0.1:1/fleet/cm.yaml",
    ] {
        t.write("kustomization.yaml", &format!("resources:\n- {entry}\n"));
        let e = t.build().unwrap_err().to_string();
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        assert!(e.contains("127.0.0.1:1/fleet"), "{e}");
    }
}

#[test]
fn patches_cannot_multiply_memory() {
    // One 1 MiB patch aimed at 200 objects: 200 MiB of copies.
    let t = Tree::new();
    let mut cms = String::new();
    for i in 0..200 {
        cms.push_str(&CM.replace("name: cm", &format!("name: cm{i}")));
        cms.push_str("---\n");
    }
    t.write("cms.yaml", &cms);
    t.write(
        "patch.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: any\ndata:\n  big: {}\n",
            "x".repeat(1 << 20)
        ),
    );
    t.write(
        "kustomization.yaml",
        "resources:\n- cms.yaml\npatches:\n- path: patch.yaml\n  target:\n    kind: ConfigMap\n",
    );
    let e = t.build().unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("patches copy"), "{e}");

    // JSON patch copies doubling a value: 2^40 bytes if nothing stopped it.
    let t = Tree::new();
    t.write("cm.yaml", &format!("{CM}  seed: {}\n", "y".repeat(1024)));
    let mut ops = String::from("- op: add\n  path: /data/d0\n  value: [x]\n");
    ops.push_str("- op: copy\n  from: /data/seed\n  path: /data/d0/0\n");
    for i in 1..40 {
        ops.push_str(&format!(
            "- op: add\n  path: /data/d{i}\n  value: []\n- op: copy\n  from: /data/d{p}\n  path: /data/d{i}/-\n- op: copy\n  from: /data/d{p}\n  path: /data/d{i}/-\n",
            p = i - 1
        ));
    }
    t.write("ops.yaml", &ops);
    t.write(
        "kustomization.yaml",
        "resources:\n- cm.yaml\npatches:\n- path: ops.yaml\n  target:\n    kind: ConfigMap\n",
    );
    let started = Instant::now();
    let e = t.build().unwrap_err();
    assert!(
        e.to_string().contains("copy operations copy more than"),
        "{e}"
    );
    // Bounded: unbounded copies would not end; the margin allows for a
    // loaded machine.
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn a_repeated_key_keeps_the_last_value_as_kustomize_does_and_warns() {
    let t = Tree::new();
    t.write("a.yaml", &CM.replace("name: cm", "name: a"));
    t.write("b.yaml", &CM.replace("name: cm", "name: b"));
    t.write(
        "kustomization.yaml",
        "resources:\n- a.yaml\nresources:\n- b.yaml\n",
    );
    let out = build(&t.root(), &t.controller_opts()).unwrap();
    let yaml = out.to_yaml();
    assert!(
        yaml.contains("name: b") && !yaml.contains("name: a"),
        "{yaml}"
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("line 3: mapping key \"resources\" already defined at line 1;")),
        "{:?}",
        out.warnings
    );
}
