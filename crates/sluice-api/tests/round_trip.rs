//! Realistic Flux objects (`tests/fixtures`) through sluice's types: every fixture is accepted by
//! Flux's schema and by sluice's, and deserializing then serializing it gives back exactly the
//! same JSON: no field is lost, renamed, reformatted or added.

mod common;

use common::{fixture, fixtures, flux_crd, sluice_crd, v1_schema, validate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_api::kustomization::{DeletionPolicy, SourceKind, SubstituteKind};
use sluice_api::meta::{self, ObjectId, Revision};
use sluice_api::source::{GitProvider, GitVerificationMode};
use sluice_api::{FluxObject, GitRepository, Kustomization};

fn round_trip<T: DeserializeOwned + Serialize>(name: &str, original: &Value) -> T {
    let typed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{name}: does not deserialize: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if &back != original {
        panic!(
            "{name}: changed by the round trip\n--- original\n{}\n--- after\n{}",
            serde_json::to_string_pretty(original).unwrap(),
            serde_json::to_string_pretty(&back).unwrap()
        );
    }
    typed
}

#[test]
fn fixtures_round_trip_unchanged() {
    for (name, object) in fixtures() {
        match object["kind"].as_str() {
            Some("GitRepository") => {
                round_trip::<GitRepository>(&name, &object);
            }
            Some("Kustomization") => {
                round_trip::<Kustomization>(&name, &object);
            }
            other => panic!("{name}: unexpected kind {other:?}"),
        }
    }
}

fn crd_file_and_name(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "GitRepository" => (
            "source.toolkit.fluxcd.io_gitrepositories.yaml",
            "gitrepositories.source.toolkit.fluxcd.io",
        ),
        "Kustomization" => (
            "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
            "kustomizations.kustomize.toolkit.fluxcd.io",
        ),
        other => panic!("unexpected kind {other}"),
    }
}

/// The fixtures are objects Flux's CRDs admit (so they are realistic), and sluice's CRDs admit
/// them too.
#[test]
fn fixtures_are_valid_for_flux_and_sluice_schemas() {
    let mut problems = vec![];
    for (name, object) in fixtures() {
        let (file, crd_name) = crd_file_and_name(object["kind"].as_str().unwrap());
        let ours = sluice_crd(crd_name);
        for p in validate(v1_schema(&ours), &object) {
            problems.push(format!("{name} (sluice's schema): {p}"));
        }
        if let Some(flux) = flux_crd(file) {
            for p in validate(v1_schema(&flux), &object) {
                problems.push(format!("{name} (Flux's schema): {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The validator is not vacuous: it reports what the API server would refuse or prune.
#[test]
fn validator_catches_invalid_objects() {
    let crd = sluice_crd("kustomizations.kustomize.toolkit.fluxcd.io");
    let schema = v1_schema(&crd);
    let mut object = fixture("kustomization-apps.yaml");
    object["spec"]["interval"] = "10 minutes".into();
    object["spec"]["sourceRef"]["kind"] = "HelmRepository".into();
    object["spec"]["postBuild"]["substituteFrom"][0]["name"] = "".into();
    object["spec"]["prunee"] = true.into();
    object["spec"].as_object_mut().unwrap().remove("prune");
    let problems = validate(schema, &object).join("\n");
    for expected in [
        ".spec.interval: \"10 minutes\" does not match",
        ".spec.sourceRef.kind: \"HelmRepository\" is not one of",
        ".spec.postBuild.substituteFrom[0].name: shorter than 1",
        ".spec.prunee: unknown field",
        ".spec: missing required field prune",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} not in:\n{problems}"
        );
    }
}

#[test]
fn git_repository_fields_are_typed() {
    let repo: GitRepository = serde_json::from_value(fixture("gitrepository-semver.yaml")).unwrap();
    let spec = &repo.spec;
    assert_eq!(spec.url, "https://github.com/stefanprodan/podinfo");
    assert_eq!(
        spec.reference.as_ref().unwrap().semver.as_deref(),
        Some(">=6.0.0 <7.0.0")
    );
    assert_eq!(spec.secret_ref.as_ref().unwrap().name, "podinfo-https-auth");
    assert_eq!(spec.interval().unwrap().as_secs(), 300);
    assert_eq!(spec.timeout().unwrap().as_secs(), 150);
    assert_eq!(spec.provider(), GitProvider::Generic);
    let verify = spec.verification.as_ref().unwrap();
    assert_eq!(verify.mode(), GitVerificationMode::Head);
    assert!(verify.mode().verifies_head() && !verify.mode().verifies_tag());
    assert_eq!(repo.status.as_ref().unwrap().observed_generation, Some(-1));
    assert!(!repo.is_ready());

    let repo: GitRepository =
        serde_json::from_value(fixture("gitrepository-flux-system.yaml")).unwrap();
    assert!(repo.is_ready());
    let artifact = repo.artifact().unwrap();
    let revision = Revision::parse(&artifact.revision).unwrap();
    assert_eq!(revision.reference.as_deref(), Some("main"));
    assert_eq!(revision.hash, "5394cb7f48332b2de7c17dd8b8384bbc84b7e738");
    assert!(artifact.has_revision("main/5394cb7f48332b2de7c17dd8b8384bbc84b7e738"));
    assert!(!meta::has_unhandled_reconcile_request(
        repo.metadata.annotations.as_ref(),
        repo.status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref()
    ));

    let repo: GitRepository =
        serde_json::from_value(fixture("gitrepository-include.yaml")).unwrap();
    assert_eq!(repo.spec.provider(), GitProvider::Azure);
    let include = repo.spec.include.as_ref().unwrap();
    assert_eq!(include[0].to_path(), "common");
    assert_eq!(include[1].to_path(), "crds");
    assert!(!repo.is_ready());
    assert!(meta::is_condition_true(
        repo.conditions(),
        meta::FETCH_FAILED_CONDITION
    ));
}

#[test]
fn kustomization_fields_are_typed() {
    let ks: Kustomization = serde_json::from_value(fixture("kustomization-apps.yaml")).unwrap();
    let spec = &ks.spec;
    assert!(spec.prune);
    assert_eq!(spec.source_ref.kind, SourceKind::GitRepository);
    assert_eq!(spec.source_ref.namespace_or("flux-system"), "flux-system");
    let depends_on = spec.depends_on.as_ref().unwrap();
    assert_eq!(depends_on[0].namespace_or("flux-system"), "flux-system");
    assert_eq!(depends_on[1].namespace_or("flux-system"), "platform");
    let from = spec
        .post_build
        .as_ref()
        .unwrap()
        .substitute_from
        .as_ref()
        .unwrap();
    assert_eq!(from[0].kind, SubstituteKind::ConfigMap);
    assert!(!from[0].is_optional());
    assert_eq!(from[1].kind, SubstituteKind::Secret);
    assert!(from[1].is_optional());
    let patches = spec.patches.as_ref().unwrap();
    assert_eq!(
        patches[1].target.as_ref().unwrap().name.as_deref(),
        Some("frontend")
    );
    assert!(patches[2].target.is_none());
    assert_eq!(spec.health_checks.as_ref().unwrap()[2].api_version, None);
    assert_eq!(spec.retry_interval().unwrap().as_secs(), 120);
    assert_eq!(spec.timeout().unwrap().as_secs(), 300);
    assert_eq!(spec.deletion_policy(), DeletionPolicy::MirrorPrune);
    assert!(spec.deletes_on_finalize());

    let ks: Kustomization =
        serde_json::from_value(fixture("kustomization-flux-system.yaml")).unwrap();
    // No timeout: the interval less 30s.
    assert_eq!(ks.spec.timeout().unwrap().as_secs(), 570);
    assert!(ks.is_ready());
    let ids: Vec<ObjectId> = ks
        .inventory()
        .iter()
        .map(|e| e.object_id().unwrap())
        .collect();
    assert_eq!(ids[0], ObjectId::new("", "flux-system", "", "Namespace"));
    assert_eq!(ks.inventory()[0].api_version().unwrap(), "v1");
    assert_eq!(ks.inventory()[4].api_version().unwrap(), "apps/v1");
    assert_eq!(ids[4].to_string(), ks.inventory()[4].id);

    let ks: Kustomization = serde_json::from_value(fixture("kustomization-remote.yaml")).unwrap();
    assert_eq!(ks.spec.source_ref.kind, SourceKind::OciRepository);
    assert_eq!(ks.spec.source_ref.namespace_or("fleet"), "fleet-sources");
    assert_eq!(ks.spec.timeout().unwrap().as_secs(), 3600 - 30);
    assert!(ks.spec.deletes_on_finalize());
    assert!(ks.spec.depends_on.as_ref().unwrap()[0].ready_expr.is_some());
    assert!(!ks.is_ready());

    let ks: Kustomization =
        serde_json::from_value(fixture("kustomization-configmap-kubeconfig.yaml")).unwrap();
    assert!(ks.spec.is_suspended());
    assert!(!ks.spec.deletes_on_finalize());
    assert_eq!(ks.spec.source_ref.kind, SourceKind::Bucket);
}

/// A value a newer Flux CRD might admit is kept, not refused: sluice reads and writes back
/// objects that its own enumerations do not know.
#[test]
fn unknown_enum_values_survive() {
    let mut object = fixture("kustomization-apps.yaml");
    object["spec"]["sourceRef"]["kind"] = "FutureSource".into();
    object["spec"]["deletionPolicy"] = "SomethingNew".into();
    let ks = round_trip::<Kustomization>("modified kustomization-apps.yaml", &object);
    assert_eq!(
        ks.spec.source_ref.kind,
        SourceKind::Unknown("FutureSource".into())
    );
    assert!(!ks.spec.source_ref.kind.is_known());
    assert!(!ks.spec.deletes_on_finalize());

    let mut object = fixture("gitrepository-semver.yaml");
    object["spec"]["verify"]["mode"] = "head".into();
    let repo = round_trip::<GitRepository>("modified gitrepository-semver.yaml", &object);
    let mode = repo.spec.verification.unwrap().mode.unwrap();
    assert_eq!(mode, GitVerificationMode::HeadLegacy);
    assert_eq!(mode.effective(), GitVerificationMode::Head);
}

/// Objects built in Rust serialize without `null`s and with Flux's field names.
#[test]
fn built_objects_serialize_like_flux() {
    use sluice_api::kustomization::CrossNamespaceSourceReference;
    use sluice_api::{GitRepositorySpec, KustomizationSpec};

    let repo = GitRepository::new(
        "flux-system",
        GitRepositorySpec {
            url: "ssh://git@github.com/example/fleet-infra".into(),
            interval: "1m0s".into(),
            ..Default::default()
        },
    );
    let json = serde_json::to_value(&repo).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": { "name": "flux-system" },
            "spec": { "url": "ssh://git@github.com/example/fleet-infra", "interval": "1m0s" }
        })
    );

    let ks = Kustomization::new(
        "apps",
        KustomizationSpec::new(
            "10m",
            true,
            CrossNamespaceSourceReference::git_repository("flux-system"),
        ),
    );
    let json = serde_json::to_value(&ks).unwrap();
    assert_eq!(
        json["spec"],
        serde_json::json!({
            "interval": "10m",
            "prune": true,
            "sourceRef": { "kind": "GitRepository", "name": "flux-system" }
        })
    );
    assert_eq!(json["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
}
