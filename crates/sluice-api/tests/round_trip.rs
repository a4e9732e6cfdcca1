//! Realistic Flux objects (`tests/fixtures`) through sluice's types: every fixture is accepted by
//! Flux's schema and by sluice's, and deserializing then serializing it gives back exactly the
//! same JSON: no field is lost, renamed, reformatted or added.

mod common;

use common::{fixture, fixtures, flux_crd, sluice_crd, stored_schema, validate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sluice_api::kustomization::{DeletionPolicy, SourceKind, SubstituteKind};
use sluice_api::meta::{self, ObjectId, Revision};
use sluice_api::source::{
    GitProvider, GitVerificationMode, HelmChartSourceKind, HelmRepositoryType, OCILayerOperation,
    OCIProvider, OCIVerificationProvider, ReconcileStrategy,
};
use sluice_api::{
    Bucket, ExternalArtifact, FluxObject, GitRepository, HelmChart, HelmRelease, HelmRepository,
    Kustomization, OCIRepository,
};

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
            Some("OCIRepository") => {
                round_trip::<OCIRepository>(&name, &object);
            }
            Some("HelmRepository") => {
                round_trip::<HelmRepository>(&name, &object);
            }
            Some("HelmChart") => {
                round_trip::<HelmChart>(&name, &object);
            }
            Some("Bucket") => {
                round_trip::<Bucket>(&name, &object);
            }
            Some("ExternalArtifact") => {
                round_trip::<ExternalArtifact>(&name, &object);
            }
            Some("HelmRelease") => {
                round_trip::<HelmRelease>(&name, &object);
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
        "OCIRepository" => (
            "source.toolkit.fluxcd.io_ocirepositories.yaml",
            "ocirepositories.source.toolkit.fluxcd.io",
        ),
        "HelmRepository" => (
            "source.toolkit.fluxcd.io_helmrepositories.yaml",
            "helmrepositories.source.toolkit.fluxcd.io",
        ),
        "HelmChart" => (
            "source.toolkit.fluxcd.io_helmcharts.yaml",
            "helmcharts.source.toolkit.fluxcd.io",
        ),
        "Bucket" => (
            "source.toolkit.fluxcd.io_buckets.yaml",
            "buckets.source.toolkit.fluxcd.io",
        ),
        "ExternalArtifact" => (
            "source.toolkit.fluxcd.io_externalartifacts.yaml",
            "externalartifacts.source.toolkit.fluxcd.io",
        ),
        "HelmRelease" => (
            "helm.toolkit.fluxcd.io_helmreleases.yaml",
            "helmreleases.helm.toolkit.fluxcd.io",
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
        for p in validate(stored_schema(&ours), &object) {
            problems.push(format!("{name} (sluice's schema): {p}"));
        }
        if let Some(flux) = flux_crd(file) {
            for p in validate(stored_schema(&flux), &object) {
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
    let schema = stored_schema(&crd);
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

#[test]
fn oci_repository_fields_are_typed() {
    use sluice_api::source::{FLUX_CONTENT_MEDIA_TYPE, HELM_CHART_LAYER_MEDIA_TYPE};

    let repo: OCIRepository =
        serde_json::from_value(fixture("ocirepository-helm-chart.yaml")).unwrap();
    let spec = &repo.spec;
    assert_eq!(
        spec.repository(),
        Some("ghcr.io/actions/actions-runner-controller-charts/gha-runner-scale-set-controller")
    );
    assert_eq!(
        spec.reference.as_ref().unwrap().tag.as_deref(),
        Some("0.14.2")
    );
    assert_eq!(spec.layer_media_type(), Some(HELM_CHART_LAYER_MEDIA_TYPE));
    assert_eq!(spec.layer_operation(), OCILayerOperation::Copy);
    assert_eq!(spec.interval().unwrap().as_secs(), 900);
    assert_eq!(spec.timeout().unwrap().as_secs(), 60);
    assert_eq!(spec.provider(), OCIProvider::Generic);
    assert!(!spec.is_insecure() && !spec.is_suspended());
    assert!(repo.is_ready());
    let status = repo.status.as_ref().unwrap();
    assert_eq!(
        status.observed_layer_selector.as_ref(),
        spec.layer_selector.as_ref()
    );
    let artifact = repo.artifact().unwrap();
    assert!(artifact.revision.starts_with("0.14.2@sha256:"));
    assert_eq!(
        artifact.metadata.as_ref().unwrap()["org.opencontainers.image.version"],
        "0.14.2"
    );

    let repo: OCIRepository =
        serde_json::from_value(fixture("ocirepository-verified-manifests.yaml")).unwrap();
    let spec = &repo.spec;
    assert_eq!(spec.provider(), OCIProvider::Aws);
    // Neither timeout nor layer selector written: Flux's defaults.
    assert_eq!(spec.timeout().unwrap().as_secs(), 60);
    assert_eq!(spec.layer_media_type(), None);
    assert_eq!(spec.layer_operation(), OCILayerOperation::Extract);
    assert_ne!(spec.layer_media_type(), Some(FLUX_CONTENT_MEDIA_TYPE));
    let verify = spec.verification.as_ref().unwrap();
    assert_eq!(verify.provider, OCIVerificationProvider::Cosign);
    assert_eq!(verify.match_oidc_identity.as_ref().unwrap().len(), 1);
    assert!(verify.secret_ref.is_none());
    assert_eq!(spec.service_account_name.as_deref(), Some("podinfo-puller"));
    assert!(!repo.is_ready());
    assert!(meta::is_condition_false(
        repo.conditions(),
        meta::SOURCE_VERIFIED_CONDITION
    ));
}

#[test]
fn helm_repository_fields_are_typed() {
    let repo: HelmRepository =
        serde_json::from_value(fixture("helmrepository-bitnami.yaml")).unwrap();
    let spec = &repo.spec;
    assert_eq!(spec.type_(), HelmRepositoryType::Default);
    assert!(!spec.is_oci());
    assert_eq!(spec.secret_ref.as_ref().unwrap().name, "bitnami-auth");
    assert_eq!(spec.interval().unwrap().as_secs(), 3600);
    assert_eq!(spec.timeout().unwrap().as_secs(), 180);
    assert!(!spec.pass_credentials());
    assert!(repo.is_ready());
    assert!(repo.artifact().unwrap().path.ends_with(".yaml"));

    let repo: HelmRepository = serde_json::from_value(fixture("helmrepository-oci.yaml")).unwrap();
    let spec = &repo.spec;
    assert_eq!(spec.type_(), HelmRepositoryType::Oci);
    assert!(spec.is_oci());
    assert_eq!(spec.provider(), OCIProvider::Generic);
    assert_eq!(spec.timeout().unwrap().as_secs(), 60);
    assert_eq!(spec.interval().unwrap().as_secs(), 300);
    let acl = spec.access_from.as_ref().unwrap();
    assert_eq!(
        acl.namespace_selectors[0].match_labels.as_ref().unwrap()["kubernetes.io/metadata.name"],
        "flux-system"
    );
    assert!(repo.status.is_none() && !repo.is_ready());
}

#[test]
fn helm_chart_fields_are_typed() {
    let chart: HelmChart =
        serde_json::from_value(fixture("helmchart-from-helmrepository.yaml")).unwrap();
    let spec = &chart.spec;
    assert_eq!(spec.source_ref.kind, HelmChartSourceKind::HelmRepository);
    assert_eq!(spec.source_ref.name, "jetstack");
    assert_eq!(spec.version(), "1.x");
    assert_eq!(spec.reconcile_strategy(), ReconcileStrategy::ChartVersion);
    assert!(spec.values_files().is_empty());
    assert_eq!(spec.interval().unwrap().as_secs(), 12 * 3600);
    assert!(chart.is_ready());
    let status = chart.status.as_ref().unwrap();
    assert_eq!(status.observed_chart_name.as_deref(), Some("cert-manager"));
    assert_eq!(
        meta::find_condition(chart.conditions(), meta::READY_CONDITION)
            .unwrap()
            .reason,
        sluice_api::source::CHART_PULL_SUCCEEDED_REASON
    );

    let chart: HelmChart =
        serde_json::from_value(fixture("helmchart-from-gitrepository.yaml")).unwrap();
    let spec = &chart.spec;
    assert_eq!(spec.source_ref.kind, HelmChartSourceKind::GitRepository);
    assert_eq!(
        spec.source_ref.api_version.as_deref(),
        Some("source.toolkit.fluxcd.io/v1")
    );
    assert_eq!(spec.reconcile_strategy(), ReconcileStrategy::Revision);
    assert_eq!(spec.version(), "*");
    assert_eq!(spec.values_files().len(), 3);
    assert!(spec.ignore_missing_values_files());
    assert!(!spec.is_suspended());
    assert!(chart.is_ready());
    assert!(!chart.has_unhandled_reconcile_request());
    assert_eq!(
        chart
            .status
            .as_ref()
            .unwrap()
            .observed_values_files
            .as_ref()
            .unwrap()
            .len(),
        2
    );
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

    let mut object = fixture("ocirepository-helm-chart.yaml");
    object["spec"]["layerSelector"]["operation"] = "stream".into();
    object["spec"]["provider"] = "oracle".into();
    let repo = round_trip::<OCIRepository>("modified ocirepository-helm-chart.yaml", &object);
    assert_eq!(
        repo.spec.layer_operation(),
        OCILayerOperation::Unknown("stream".into())
    );
    assert_eq!(repo.spec.provider(), OCIProvider::Unknown("oracle".into()));

    let mut object = fixture("helmchart-from-helmrepository.yaml");
    object["spec"]["sourceRef"]["kind"] = "ExternalArtifact".into();
    object["spec"]["reconcileStrategy"] = "Digest".into();
    let chart = round_trip::<HelmChart>("modified helmchart-from-helmrepository.yaml", &object);
    assert!(!chart.spec.source_ref.kind.is_known());
    assert!(!chart.spec.reconcile_strategy().is_known());

    let mut object = fixture("helmrepository-oci.yaml");
    object["spec"]["type"] = "git".into();
    let repo = round_trip::<HelmRepository>("modified helmrepository-oci.yaml", &object);
    assert!(!repo.spec.is_oci());
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

    use sluice_api::source::{LocalHelmChartSourceReference, OCILayerSelector};
    use sluice_api::{HelmChartSpec, HelmRepositorySpec, OCIRepositorySpec};

    let mut spec = OCIRepositorySpec::new("oci://ghcr.io/stefanprodan/manifests/podinfo", "5m");
    spec.layer_selector = Some(OCILayerSelector {
        media_type: Some(sluice_api::source::FLUX_CONTENT_MEDIA_TYPE.into()),
        operation: Some(OCILayerOperation::Extract),
    });
    let json = serde_json::to_value(OCIRepository::new("podinfo", spec)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": { "name": "podinfo" },
            "spec": {
                "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
                "interval": "5m",
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
                    "operation": "extract"
                }
            }
        })
    );

    let json = serde_json::to_value(HelmRepository::new(
        "bitnami",
        HelmRepositorySpec::new("https://charts.bitnami.com/bitnami"),
    ))
    .unwrap();
    assert_eq!(
        json["spec"],
        serde_json::json!({ "url": "https://charts.bitnami.com/bitnami" })
    );
    assert_eq!(json["kind"], "HelmRepository");

    let json = serde_json::to_value(HelmChart::new(
        "redis",
        HelmChartSpec::new(
            "redis",
            LocalHelmChartSourceReference::helm_repository("bitnami"),
            "10m",
        ),
    ))
    .unwrap();
    assert_eq!(
        json["spec"],
        serde_json::json!({
            "chart": "redis",
            "sourceRef": { "kind": "HelmRepository", "name": "bitnami" },
            "interval": "10m"
        })
    );
    assert_eq!(json["kind"], "HelmChart");
}

#[test]
fn helm_release_fields_are_typed() {
    use sluice_api::helm_release::{
        ActionStrategyName, ChartRefKind, CrdsPolicy, DriftDetectionMode, ReleaseAction,
        RemediationStrategy, ValuesKind,
    };
    let hr: HelmRelease = serde_json::from_value(fixture("helmrelease-podinfo.yaml")).unwrap();
    let spec = &hr.spec;
    let chart_ref = spec.chart_ref.as_ref().unwrap();
    assert_eq!(chart_ref.kind, ChartRefKind::OciRepository);
    assert_eq!(chart_ref.namespace_or("apps"), "flux-system");
    assert_eq!(hr.release_name(), "podinfo");
    assert_eq!(hr.release_namespace(), "web");
    assert_eq!(hr.max_history(), 3);
    assert_eq!(hr.install().crds, Some(CrdsPolicy::CreateReplace));
    assert_eq!(hr.drift_detection_mode(), DriftDetectionMode::Enabled);
    let from = spec.values_from.as_ref().unwrap();
    assert_eq!(from[0].kind, ValuesKind::ConfigMap);
    assert_eq!(from[0].values_key(), "values.yaml");
    assert!(!from[0].is_optional());
    assert_eq!(from[1].values_key(), "ui.yaml");
    assert!(from[1].is_optional());
    assert_eq!(spec.values.as_ref().unwrap()["replicaCount"], 2);
    let upgrade = hr.active_remediation().unwrap();
    assert_eq!(upgrade.action, ReleaseAction::Upgrade);
    assert_eq!(upgrade.strategy, RemediationStrategy::Rollback);
    assert!(!upgrade.remediate_last_failure, "set false explicitly");
    assert!(hr.is_ready());
    let status = hr.status.as_ref().unwrap();
    let latest = status.latest().unwrap();
    assert_eq!(latest.full_release_name(), "web/podinfo.v2");
    assert_eq!(latest.versioned_chart_name(), "podinfo@6.7.1+0f5d0c8e2a0c");
    assert!(latest.has_been_tested());
    assert!(!latest.has_test_in_phase("Failed"));
    assert_eq!(status.previous(false).unwrap().version, 1);
    let mut truncated = status.clone();
    truncated.truncate_history(false);
    assert_eq!(truncated.history.as_ref().unwrap().len(), 2);
    assert_eq!(status.helm_chart(), Some(("flux-system", "apps-podinfo")));
    assert_eq!(hr.inventory().len(), 2);

    let hr: HelmRelease =
        serde_json::from_value(fixture("helmrelease-chart-template.yaml")).unwrap();
    let template = hr.spec.chart.as_ref().unwrap();
    assert_eq!(template.spec.chart, "traefik");
    assert_eq!(hr.release_name(), "traefik");
    let install = hr.install();
    let strategy = install.strategy.as_ref().unwrap();
    assert_eq!(strategy.name, ActionStrategyName::RetryOnFailure);
    assert!(!hr.is_ready());
}
