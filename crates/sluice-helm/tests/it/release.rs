//! Release records the real Helm wrote (`scripts/helm-release-goldens`:
//! `helm install --dry-run=client -o json`, Helm v4.2.4) read by
//! `sluice_helm::release` and written back byte for byte.

use std::path::Path;

use sluice_helm::release::{Release, Status};

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/release")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn helms_records_round_trip_byte_for_byte() {
    for name in ["features.json", "with-schema.json", "archive.json"] {
        let text = golden(name);
        // json.Encoder ends the record with a newline; json.Marshal (what
        // the storage and Flux's digests use) does not.
        let json = text.trim_end_matches('\n');
        let r = Release::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.to_json().unwrap(), json, "{name}");
        // Through the storage encoding as well.
        let back = Release::decode(r.encode().unwrap().as_bytes()).unwrap();
        assert_eq!(back.to_json().unwrap(), json, "{name}");
    }
}

#[test]
fn helms_record_fields_are_read() {
    let r = Release::from_json(golden("features.json").as_bytes()).unwrap();
    assert_eq!(
        (r.name.as_str(), r.namespace.as_str(), r.version),
        ("feat", "apps", 1)
    );
    assert_eq!(r.status(), Status::PendingInstall);
    assert_eq!(r.apply_method, "ssa");
    let info = r.info.as_ref().unwrap();
    assert_eq!(info.notes, "Thank you for installing features.\n");
    assert!(info.first_deployed.is_some() && info.deleted.is_none());
    let chart = r.chart.as_ref().unwrap();
    let md = chart.metadata.as_ref().unwrap();
    assert_eq!(
        (md.name.as_str(), md.version.as_str()),
        ("features", "1.2.3")
    );
    assert!(md.dependencies.iter().flatten().all(|d| d.enabled));
    assert!(
        chart
            .templates
            .as_ref()
            .unwrap()
            .iter()
            .any(|t| t.name == "templates/NOTES.txt")
    );
    // --set values: typed as Helm types them; a value file's numbers are floats.
    assert_eq!(r.config.get("zip").and_then(|v| v.as_str()), Some("007"));
    assert!(r.manifest.starts_with("---\n# Source: features/"));
    let hook = r.hooks.iter().find(|h| h.name == "early").unwrap();
    assert_eq!(hook.events, ["pre-install"]);
    assert_eq!(hook.weight, -5);

    let r = Release::from_json(golden("with-schema.json").as_bytes()).unwrap();
    let chart = r.chart.unwrap();
    let schema = String::from_utf8(chart.schema.unwrap()).unwrap();
    assert!(schema.contains("\"$schema\""), "{schema}");
}

/// The digests Flux's helm-controller v1.6.4 computes for these records
/// (`scripts/flux-snapshot-goldens` runs its own `ObserveRelease`,
/// `ObservedToSnapshot` and `chartutil.DigestValues` over them).
#[test]
fn digests_are_what_helm_controller_computes() {
    let table = golden("flux-digests.txt");
    let mut checked = 0;
    for line in table.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [file, digest, config] = parts[..] else {
            panic!("flux-digests.txt: bad line {line:?}");
        };
        let r = Release::from_json(golden(file).as_bytes()).unwrap();
        assert_eq!(
            sluice_helm::flux::release_digest(&r, "").unwrap(),
            digest,
            "{file}"
        );
        assert_eq!(
            sluice_helm::flux::config_digest(&r.config),
            config,
            "{file}"
        );
        let snap = sluice_helm::flux::snapshot(&r, "install", "").unwrap();
        assert_eq!(
            (snap.digest.as_str(), snap.config_digest.as_str()),
            (digest, config)
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "one line per record");
}

/// A record sluice makes from its own render is the record Helm made for
/// the same chart, values and times (`features.json`: `helm install
/// --dry-run=client` with a values file and `--set`s), apart from the
/// files' modification times, which sluice does not keep.
#[test]
fn sluice_makes_the_record_helm_makes() {
    use sluice_helm::release::NewRevision;
    use sluice_helm::render::strvals::{Kind, parse_into};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/render");
    let chart = sluice_helm::chart::load_dir(&dir.join("features"), &Default::default()).unwrap();
    let mut config =
        sluice_helm::values::load_values(&std::fs::read(dir.join("set-values.yaml")).unwrap())
            .unwrap();
    for (set, kind) in [
        ("web.extra=<b>&amp;</b>", Kind::Typed),
        ("big=12345678901", Kind::Typed),
        ("ratio=0.25", Kind::Typed),
        ("zip=007", Kind::String),
    ] {
        parse_into(set, &mut config, kind).unwrap();
    }
    let opts = sluice_helm::render::Options {
        release_name: "feat".into(),
        namespace: "apps".into(),
        ..Default::default()
    };
    let rendered = sluice_helm::render::render(&chart, &config, &opts).unwrap();
    let helms = golden("features.json");
    let helms = helms.trim_end();
    let time = Release::from_json(helms.as_bytes())
        .unwrap()
        .info
        .unwrap()
        .first_deployed
        .unwrap();
    let ours = Release::new_revision(NewRevision {
        name: "feat",
        namespace: "apps",
        version: 1,
        chart: &chart,
        rendered: &rendered,
        config,
        first_deployed: &time,
        last_deployed: &time,
        status: Status::PendingInstall,
        description: "Dry run complete",
        apply_method: "ssa",
    });
    let no_modtimes = regex::Regex::new(r#","modtime":"[^"]*""#).unwrap();
    let ours = ours.to_json().unwrap();
    assert!(!no_modtimes.is_match(&ours));
    let helms = no_modtimes.replace_all(helms, "");
    crate::support::assert_same_text("records", ("sluice", "helm"), &ours, &helms);
}
