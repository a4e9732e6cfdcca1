//! Byte-exact rendering tests: each directory under tests/golden/ that has
//! an `expected.yaml` is built (from its `build` subdirectory if present,
//! else itself, else `prod`) and compared with it. Set UPDATE_GOLDEN=1 to
//! rewrite the expectations from sluice's output — except the `real-*`
//! cases (shapes found in real repositories: Component directories, `List`
//! documents, YAML 1.1 octal modes, block scalars, odd separators, repeated
//! annotations), whose expectations are Go kustomize's own output, written by
//! `scripts/golden-from-kustomize`.

use std::path::{Path, PathBuf};

use sluice_kustomize::{Options, Reorder};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn build_dir(case: &Path) -> PathBuf {
    for sub in ["prod", "build"] {
        if case.join(sub).is_dir() {
            return case.join(sub);
        }
    }
    case.to_path_buf()
}

#[test]
fn golden_outputs_match_byte_for_byte() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for case in cases() {
        let expected_path = case.join("expected.yaml");
        let mut opts = Options::new();
        opts.reorder = Reorder::Legacy;
        let out = sluice_kustomize::build(&build_dir(&case), &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
            .to_yaml();
        if update
            && !case
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("real-"))
        {
            std::fs::write(&expected_path, &out).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        assert_eq!(out, expected, "golden mismatch for {}", case.display());
        checked += 1;
    }
    assert!(
        update || checked >= 8,
        "golden cases missing: {checked} checked"
    );
}

/// Inputs kustomize refuses, with the cause named (kustomize v5.8.1 fails
/// on each of these too).
#[test]
fn refused_inputs_name_their_cause() {
    // (what, files, what the error must say)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 9] = [
        (
            "misspelled field",
            &[("kustomization.yaml", "resourcs:\n- cm.yaml\n")],
            "invalid Kustomization: json: unknown field \"resourcs\"",
        ),
        (
            "misspelled field of an image",
            &[(
                "kustomization.yaml",
                "resources: []\nimages:\n- name: x\n  newTg: v2\n",
            )],
            "invalid Kustomization: json: unknown field \"newTg\"",
        ),
        (
            "empty kustomization",
            &[(
                "kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: \"\"\n",
            )],
            "kustomization.yaml is empty",
        ),
        (
            "helm",
            &[(
                "kustomization.yaml",
                "helmCharts:\n- name: x\n  repo: https://example.com\n",
            )],
            "helmCharts is not supported yet",
        ),
        (
            "exec function",
            &[
                ("kustomization.yaml", "transformers:\n- fn.yaml\n"),
                (
                    "fn.yaml",
                    "apiVersion: example.com/v1\nkind: Fn\nmetadata:\n  name: f\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ./fn.sh\n",
                ),
            ],
            "config.kubernetes.io/function",
        ),
        (
            "repeated label",
            &[
                ("kustomization.yaml", "resources:\n- cm.yaml\n"),
                (
                    "cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  labels:\n    a: \"1\"\n    a: \"2\"\n",
                ),
            ],
            "MalformedYAMLError: yaml: line 7: mapping key \"a\" already defined at line 6 in File: cm.yaml",
        ),
        (
            "generator key in a literal and an env file",
            &[
                (
                    "kustomization.yaml",
                    "secretGenerator:\n- name: s\n  literals:\n  - B=3\n  envs:\n  - x.env\n",
                ),
                ("x.env", "A=1\nB=2\n"),
            ],
            "kustomization.yaml: configmap s illegally repeats the key `B`",
        ),
        (
            "json 6902 replace below a missing field",
            &[
                (
                    "kustomization.yaml",
                    "resources:\n- cm.yaml\npatches:\n- target:\n    kind: ConfigMap\n  patch: '[{\"op\": \"replace\", \"path\": \"/data/x/y\", \"value\": 1}]'\n",
                ),
                (
                    "cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
                ),
            ],
            "replace operation does not apply: doc is missing path: /data/x/y: missing value",
        ),
        (
            "generator key twice",
            &[
                (
                    "kustomization.yaml",
                    "configMapGenerator:\n- name: c\n  envs:\n  - x.env\n",
                ),
                ("x.env", "A=1\nB=2\nA=3\n"),
            ],
            "configmap c illegally repeats the key `A`",
        ),
    ];
    for (name, files, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (f, text) in files {
            std::fs::write(dir.path().join(f), text).unwrap();
        }
        let err = sluice_kustomize::build(dir.path(), &Options::new())
            .err()
            .unwrap_or_else(|| panic!("{name}: built"));
        let msg = err.to_string();
        assert!(msg.contains(want), "{name}: {msg}");
    }
}

/// Resources whose YAML texts kustomize reads its own way (tests/yaml/:
/// `cases.jsonl`, each text appended to a ConfigMap's head; `kustomize.jsonl`,
/// what Go kustomize v5.8.1 printed or refused, written by
/// `scripts/golden-from-kustomize`): sluice prints the same bytes, or refuses
/// too, naming the same problem.
#[test]
fn yaml_is_read_as_kustomize_reads_it() {
    // Read otherwise, and why.
    const KNOWN: &[(&str, &str)] = &[
        (
            "bom",
            "a byte order mark inside a document: go-yaml v3 keeps it in the key, libyaml skips it",
        ),
        ("deep-ok", "nesting deeper than 256 levels is refused"),
        (
            "set-tag",
            "an implicit value in a flow mapping is \"\" in kustomize, null here",
        ),
        (
            "flow-empty-values",
            "an implicit value in a flow mapping is \"\" in kustomize, null here",
        ),
        (
            "uint-tag-int",
            "integers past i64 are kept as the nearest float",
        ),
    ];
    // Refused by both, worded otherwise: kyaml finds a null key twice; go-yaml
    // v3 tells a simple key's end otherwise than libyaml; kustomize
    // overflows its stack on an anchor that contains itself; go-yaml names
    // the line of the JSON it reads back, which sluice has no reason to write.
    const WORDED_OTHERWISE: &[&str] = &[
        "nel-in-key",
        "nel-then-marker",
        "null-key",
        "null-key-str-value",
        "null-key-map-value",
        "empty-flow-key",
        "anchor-self",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/yaml");
    let read = |f: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (cases, verdicts) = (read("cases.jsonl"), read("kustomize.jsonl"));
    assert_eq!(cases.len(), verdicts.len(), "regenerate kustomize.jsonl");
    let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
    let mut failures = Vec::new();
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            verdict["name"].as_str(),
            Some(name),
            "regenerate kustomize.jsonl"
        );
        if KNOWN.iter().any(|(k, _)| *k == name) {
            continue;
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("kustomization.yaml"),
            "resources:\n- r.yaml\n",
        )
        .unwrap();
        let text = format!("{head}{}", case["text"].as_str().unwrap());
        std::fs::write(t.path().join("r.yaml"), text).unwrap();
        let got = sluice_kustomize::build(t.path(), &Options::new());
        let want = verdict["kustomize"].as_str().unwrap();
        match (want.strip_prefix("ERROR: "), got) {
            (None, Ok(out)) if out.to_yaml() == want => {}
            (None, Ok(out)) => failures.push(format!("{name}: printed\n{}", out.to_yaml())),
            (None, Err(e)) => failures.push(format!("{name}: refused: {e}")),
            (Some(k), Ok(_)) => failures.push(format!("{name}: built what kustomize refuses: {k}")),
            (Some(k), Err(e)) => {
                let problem = kustomize_problem(k);
                let ours = e.to_string();
                if !WORDED_OTHERWISE.contains(&name) && !ours.contains(&problem) {
                    failures.push(format!("{name}: {ours}\n  kustomize: {problem}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The problem in one of kustomize's errors, without the wrapping that
/// depends on where it stopped.
fn kustomize_problem(e: &str) -> String {
    if let Some((_, rest)) = e.split_once("accumulating resources from 'r.yaml': ")
        && let Some((problem, _)) = rest.split_once("': must build at directory")
    {
        return problem.to_string();
    }
    if let Some((_, rest)) = e.split_once("MalformedYAMLError: ") {
        return rest.split(" in File:").next().unwrap_or(rest).to_string();
    }
    if let Some((_, rest)) = e.split_once("yaml: unmarshal errors:\n  ") {
        return rest.lines().next().unwrap_or(rest).to_string();
    }
    for start in ["invalid document separator", "json: ", "yaml: "] {
        if let Some(i) = e.find(start) {
            let rest = &e[i..];
            return rest.split(['\'', '\n']).next().unwrap_or(rest).to_string();
        }
    }
    e.to_string()
}
