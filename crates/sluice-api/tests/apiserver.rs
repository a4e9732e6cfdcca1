//! sluice's CRDs and Flux's, side by side in a real API server (`scripts/testenv`, through
//! `sluice-testsupport`).
//!
//! Both are installed under stand-in API groups (`*.ours.sluice-api.test` and
//! `*.flux.sluice-api.test`), so this neither needs nor disturbs the real
//! `*.toolkit.fluxcd.io` CRDs of a shared control plane. Then:
//!
//! - the API server accepts sluice's CRDs (structural schema, CEL rules, defaults);
//! - every fixture is admitted by both, and stored identically by both: same defaults, nothing
//!   pruned;
//! - what the API server returns reads into sluice's types and writes back unchanged;
//! - invalid objects are refused by both.
//!
//! Without Flux's CRDs (`../shared/flux-crds`), only sluice's side runs.

mod common;

use std::time::{Duration, Instant};

use common::{fixture, fixtures, flux_crd};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use sluice_api::{
    Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization,
    OCIRepository,
};
use sluice_testsupport::TestNamespace;

const FIELD_MANAGER: &str = "sluice-api-tests";

/// A CRD installed under a stand-in group.
struct Installed {
    /// `ours` or `flux`.
    origin: &'static str,
    kind: String,
    group: String,
    real_group: String,
    plural: String,
    /// The storage version (`v1`, `v2` for HelmRelease).
    version: String,
}

impl Installed {
    fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(&self.group, &self.version, &self.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &self.plural);
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

/// Installs `crd` under the group `<first label of its group>.<origin>.sluice-api.test` and
/// waits until it is established and served.
async fn install(client: &Client, crd: Value, origin: &'static str) -> Installed {
    let real_group = crd["spec"]["group"].as_str().unwrap().to_owned();
    let group = format!(
        "{}.{origin}.sluice-api.test",
        real_group.split('.').next().unwrap()
    );
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap().to_owned();
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
    let version = common::stored_version(&crd)["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = format!("{plural}.{group}");
    let mut crd = crd;
    crd["spec"]["group"] = group.clone().into();
    crd["metadata"] = json!({ "name": name });
    crd["apiVersion"] = "apiextensions.k8s.io/v1".into();
    crd["kind"] = "CustomResourceDefinition".into();
    if let Some(object) = crd.as_object_mut() {
        object.remove("status");
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("the API server refused the {origin} CRD {name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = crds.get(&name).await.unwrap();
        let established = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRD {name} not established: {:?}",
            current.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Installed {
        origin,
        kind,
        group,
        real_group,
        plural,
        version,
    }
}

/// The fixture as a new object for `installed` in `namespace`: name, labels, annotations and
/// spec (the status goes through the status subresource).
fn new_object(fixture: &Value, installed: &Installed, namespace: &str) -> Value {
    let mut metadata = json!({
        "name": fixture["metadata"]["name"],
        "namespace": namespace,
    });
    for key in ["labels", "annotations"] {
        if let Some(value) = fixture["metadata"].get(key) {
            metadata[key] = value.clone();
        }
    }
    json!({
        "apiVersion": format!("{}/{}", installed.group, installed.version),
        "kind": installed.kind,
        "metadata": metadata,
        "spec": fixture["spec"],
    })
}

/// Creates the object, sets its status if the fixture has one, and returns what the API server
/// stored.
async fn store(api: &Api<DynamicObject>, object: Value, status: Option<&Value>) -> Value {
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let dynamic: DynamicObject = serde_json::from_value(object).unwrap();
    // A just-established CRD can take a moment to be served.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.create(&PostParams::default(), &dynamic).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("creating {name}: {e}"),
        }
    }
    if let Some(status) = status {
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("setting the status of {name}: {e}"));
    }
    serde_json::to_value(api.get(&name).await.unwrap()).unwrap()
}

/// Whether everything in `want` is in `got` (objects may have more keys: defaults).
fn contains(got: &Value, want: &Value, path: &str, problems: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (key, w) in w {
                match g.get(key) {
                    Some(g) => contains(g, w, &format!("{path}.{key}"), problems),
                    None => problems.push(format!("{path}.{key}: pruned by the API server")),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                contains(g, w, &format!("{path}[{i}]"), problems);
            }
        }
        _ if got == want => {}
        _ => problems.push(format!("{path}: stored as {got}, sent {want}")),
    }
}

/// `object` read into `T` and written back.
fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
    object: &Value,
    fixture_name: &str,
) -> Value {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{fixture_name} as stored: {e}"));
    serde_json::to_value(typed).unwrap()
}

/// The stored object read into sluice's type and written back: must give the same spec and
/// status.
fn typed_round_trip(stored: &Value, installed: &Installed, fixture_name: &str) {
    let mut object = stored.clone();
    object["apiVersion"] = format!("{}/{}", installed.real_group, installed.version).into();
    let back = match installed.kind.as_str() {
        "GitRepository" => through::<GitRepository>(&object, fixture_name),
        "Kustomization" => through::<Kustomization>(&object, fixture_name),
        "OCIRepository" => through::<OCIRepository>(&object, fixture_name),
        "HelmRepository" => through::<HelmRepository>(&object, fixture_name),
        "HelmChart" => through::<HelmChart>(&object, fixture_name),
        "Bucket" => through::<Bucket>(&object, fixture_name),
        "ExternalArtifact" => through::<ExternalArtifact>(&object, fixture_name),
        "HelmRelease" => through::<HelmRelease>(&object, fixture_name),
        other => panic!("unexpected kind {other}"),
    };
    for part in ["spec", "status"] {
        assert_eq!(
            back[part], object[part],
            "{fixture_name} ({} CRD): {part} changed through sluice's types",
            installed.origin
        );
    }
}

/// Asserts that creating `object` is refused as invalid.
async fn refused(api: &Api<DynamicObject>, object: Value, what: &str, origin: &str) {
    let dynamic: DynamicObject = serde_json::from_value(object).unwrap();
    match api.create(&PostParams::default(), &dynamic).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {}
        Ok(_) => panic!("{origin} CRD admitted {what}"),
        Err(e) => panic!("{origin} CRD: unexpected error for {what}: {e}"),
    }
}

#[tokio::test]
async fn crds_store_fixtures_as_flux_does() {
    let client = sluice_testsupport::client().await;
    let namespace = TestNamespace::create(&client, "api").await;
    let ns = namespace.name().to_owned();

    let mut installed = vec![];
    for crd in sluice_api::crds() {
        let crd = serde_json::to_value(crd).unwrap();
        installed.push(install(&client, crd, "ours").await);
    }
    for file in [
        "source.toolkit.fluxcd.io_gitrepositories.yaml",
        "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        "source.toolkit.fluxcd.io_ocirepositories.yaml",
        "source.toolkit.fluxcd.io_helmrepositories.yaml",
        "source.toolkit.fluxcd.io_helmcharts.yaml",
        "source.toolkit.fluxcd.io_buckets.yaml",
        "source.toolkit.fluxcd.io_externalartifacts.yaml",
        "helm.toolkit.fluxcd.io_helmreleases.yaml",
    ] {
        if let Some(crd) = flux_crd(file) {
            installed.push(install(&client, crd, "flux").await);
        }
    }

    for (fixture_name, fixture) in fixtures() {
        let kind = fixture["kind"].as_str().unwrap();
        let mut stored_by = vec![];
        for target in installed.iter().filter(|i| i.kind == kind) {
            let api = target.api(&client, &ns);
            let object = new_object(&fixture, target, &ns);
            let stored = store(&api, object, fixture.get("status")).await;

            let mut problems = vec![];
            contains(&stored["spec"], &fixture["spec"], "spec", &mut problems);
            if let Some(status) = fixture.get("status") {
                contains(&stored["status"], status, "status", &mut problems);
            }
            assert!(
                problems.is_empty(),
                "{fixture_name} ({} CRD):\n  {}",
                target.origin,
                problems.join("\n  ")
            );
            typed_round_trip(&stored, target, &fixture_name);
            stored_by.push((target.origin, stored));
        }
        // Same defaults, same pruning: the object is stored the same under both CRDs.
        if let [(_, ours), (_, flux)] = stored_by.as_slice() {
            for part in ["spec", "status"] {
                assert_eq!(
                    ours[part], flux[part],
                    "{fixture_name}: {part} stored differently under sluice's CRD and Flux's"
                );
            }
        }
    }

    // The defaults of Flux's CRDs are applied by sluice's.
    let ours = |kind: &str| {
        installed
            .iter()
            .find(|i| i.origin == "ours" && i.kind == kind)
            .unwrap()
    };
    let repos = ours("GitRepository").api(&client, &ns);
    let stored = serde_json::to_value(repos.get("platform").await.unwrap()).unwrap();
    assert_eq!(stored["spec"]["timeout"], "60s");
    let stored = serde_json::to_value(repos.get("podinfo").await.unwrap()).unwrap();
    assert_eq!(stored["status"]["observedGeneration"], -1);
    let kss = ours("Kustomization").api(&client, &ns);
    let stored = serde_json::to_value(kss.get("apps").await.unwrap()).unwrap();
    assert_eq!(
        stored["spec"]["postBuild"]["substituteFrom"][0]["optional"],
        false
    );
    let stored = serde_json::to_value(kss.get("gke-apps").await.unwrap()).unwrap();
    assert_eq!(stored["spec"]["force"], false);
    let ocis = ours("OCIRepository").api(&client, &ns);
    let stored = serde_json::to_value(ocis.get("podinfo-manifests").await.unwrap()).unwrap();
    assert_eq!(stored["spec"]["timeout"], "60s");
    assert_eq!(stored["spec"]["provider"], "aws");
    assert_eq!(stored["spec"]["verify"]["provider"], "cosign");
    let helm_repos = ours("HelmRepository").api(&client, &ns);
    let stored = serde_json::to_value(helm_repos.get("podinfo").await.unwrap()).unwrap();
    assert_eq!(stored["spec"]["provider"], "generic");
    assert!(stored["spec"].get("timeout").is_none(), "{stored}");
    assert_eq!(stored["status"]["observedGeneration"], -1);

    // Defaults of objects written without them, as they read through sluice's types.
    let written = |target: &Installed, name: &str, spec: Value| {
        json!({
            "apiVersion": format!("{}/{}", target.group, target.version),
            "kind": target.kind,
            "metadata": { "name": name, "namespace": ns },
            "spec": spec,
        })
    };
    let target = ours("OCIRepository");
    let stored = store(
        &target.api(&client, &ns),
        written(
            target,
            "bare",
            json!({
                "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
                "interval": "5m",
                "verify": {},
            }),
        ),
        None,
    )
    .await;
    assert_eq!(stored["spec"]["provider"], "generic");
    assert_eq!(stored["spec"]["timeout"], "60s");
    assert_eq!(stored["spec"]["verify"]["provider"], "cosign");
    let mut object = stored.clone();
    object["apiVersion"] = "source.toolkit.fluxcd.io/v1".into();
    let repo: OCIRepository = serde_json::from_value(object).unwrap();
    assert_eq!(repo.spec.layer_operation().as_str(), "extract");
    let target = ours("HelmChart");
    let stored = store(
        &target.api(&client, &ns),
        written(
            target,
            "bare",
            json!({
                "chart": "redis",
                "interval": "10m",
                "sourceRef": { "kind": "HelmRepository", "name": "bitnami" },
            }),
        ),
        None,
    )
    .await;
    assert_eq!(stored["spec"]["version"], "*");
    assert_eq!(stored["spec"]["reconcileStrategy"], "ChartVersion");
    assert_eq!(stored["status"]["observedGeneration"], -1);
    let target = ours("HelmRelease");
    let stored = store(
        &target.api(&client, &ns),
        written(
            target,
            "bare",
            json!({
                "interval": "10m",
                "chart": { "spec": {
                    "chart": "redis",
                    "sourceRef": { "kind": "HelmRepository", "name": "bitnami" },
                    "verify": {},
                }},
                "uninstall": {},
            }),
        ),
        None,
    )
    .await;
    assert_eq!(stored["spec"]["chart"]["spec"]["version"], "*");
    assert_eq!(
        stored["spec"]["chart"]["spec"]["reconcileStrategy"],
        "ChartVersion"
    );
    assert_eq!(
        stored["spec"]["chart"]["spec"]["verify"]["provider"],
        "cosign"
    );
    assert_eq!(
        stored["spec"]["uninstall"]["deletionPropagation"],
        "background"
    );
    assert_eq!(stored["status"]["observedGeneration"], -1);

    // Invalid objects are refused by both CRDs.
    for target in &installed {
        let api = target.api(&client, &ns);
        let base = match target.kind.as_str() {
            "GitRepository" => fixture("gitrepository-semver.yaml"),
            "OCIRepository" => fixture("ocirepository-helm-chart.yaml"),
            "HelmRepository" => fixture("helmrepository-bitnami.yaml"),
            "HelmChart" => fixture("helmchart-from-helmrepository.yaml"),
            "HelmRelease" => fixture("helmrelease-podinfo.yaml"),
            "Bucket" => fixture("bucket-minio.yaml"),
            "ExternalArtifact" => fixture("externalartifact-generated.yaml"),
            "Kustomization" => fixture("kustomization-apps.yaml"),
            // The notification kinds have no fixture here; their validations are compared with
            // Flux's keyword by keyword in `flux_crd_compat`.
            "Receiver" | "Provider" | "Alert" => continue,
            other => panic!("no invalid cases for {other}"),
        };
        let mut cases: Vec<(&str, Value)> = vec![];
        let mut case = |what: &'static str, edit: &dyn Fn(&mut Value)| {
            let mut object = new_object(&base, target, &ns);
            object["metadata"]["name"] = format!("invalid-{}", cases.len()).into();
            edit(&mut object);
            cases.push((what, object));
        };
        if target.kind == "OCIRepository" {
            case("an https URL", &|o| {
                o["spec"]["url"] = "https://ghcr.io/x/y".into()
            });
            case("a timeout in hours", &|o| {
                o["spec"]["timeout"] = "1h".into()
            });
            case("an unknown layer operation", &|o| {
                o["spec"]["layerSelector"]["operation"] = "move".into()
            });
            case("an unknown provider", &|o| {
                o["spec"]["provider"] = "github".into()
            });
            case("an unknown verification provider", &|o| {
                o["spec"]["verify"] = json!({ "provider": "gpg" });
            });
            case("an OIDC identity without subject", &|o| {
                o["spec"]["verify"] = json!({ "matchOIDCIdentity": [{ "issuer": ".*" }] });
            });
            case("no interval", &|o| {
                o["spec"].as_object_mut().unwrap().remove("interval");
            });
        } else if target.kind == "HelmRepository" {
            case("a git URL", &|o| {
                o["spec"]["url"] = "git://example.com/charts".into()
            });
            case("an unknown type", &|o| o["spec"]["type"] = "git".into());
            case("an interval without unit", &|o| {
                o["spec"]["interval"] = "60".into()
            });
            case("an unknown provider", &|o| {
                o["spec"]["provider"] = "github".into()
            });
            case("accessFrom without namespaceSelectors", &|o| {
                o["spec"]["accessFrom"] = json!({})
            });
            case("no url", &|o| {
                o["spec"].as_object_mut().unwrap().remove("url");
            });
        } else if target.kind == "HelmChart" {
            case("verify with a GitRepository source", &|o| {
                o["spec"]["sourceRef"] = json!({ "kind": "GitRepository", "name": "podinfo" });
                o["spec"]["verify"] = json!({ "provider": "cosign" });
            });
            case("an OCIRepository source", &|o| {
                o["spec"]["sourceRef"]["kind"] = "OCIRepository".into()
            });
            case("an unknown reconcile strategy", &|o| {
                o["spec"]["reconcileStrategy"] = "Always".into()
            });
            case("no chart", &|o| {
                o["spec"].as_object_mut().unwrap().remove("chart");
            });
            case("a sourceRef without name", &|o| {
                o["spec"]["sourceRef"] = json!({ "kind": "HelmRepository" });
            });
        } else if target.kind == "HelmRelease" {
            case("both chart and chartRef", &|o| {
                o["spec"]["chart"] = json!({ "spec": {
                    "chart": "podinfo",
                    "sourceRef": { "kind": "HelmRepository", "name": "podinfo" },
                }});
            });
            case("neither chart nor chartRef", &|o| {
                o["spec"].as_object_mut().unwrap().remove("chartRef");
            });
            case("a chartRef to a GitRepository", &|o| {
                o["spec"]["chartRef"]["kind"] = "GitRepository".into()
            });
            case("a release name over 53 characters", &|o| {
                o["spec"]["releaseName"] = "r".repeat(54).into()
            });
            case("a retryInterval with RemediateOnFailure", &|o| {
                o["spec"]["install"]["strategy"] =
                    json!({ "name": "RemediateOnFailure", "retryInterval": "1m" });
            });
            case("a targetPath with spaces", &|o| {
                o["spec"]["valuesFrom"][1]["targetPath"] = "ui message".into()
            });
            case("an unknown drift detection mode", &|o| {
                o["spec"]["driftDetection"]["mode"] = "strict".into()
            });
            case("an unknown remediation strategy", &|o| {
                o["spec"]["upgrade"]["remediation"]["strategy"] = "reinstall".into()
            });
        } else if target.kind == "GitRepository" {
            case("an scp-style URL", &|o| {
                o["spec"]["url"] = "git@github.com:x/y".into()
            });
            case("a timeout in hours", &|o| {
                o["spec"]["timeout"] = "1h".into()
            });
            case("an interval without unit", &|o| {
                o["spec"]["interval"] = "10".into()
            });
            case("an unknown provider", &|o| {
                o["spec"]["provider"] = "gitlab".into()
            });
            case("serviceAccountName with the generic provider", &|o| {
                o["spec"]["provider"] = "generic".into();
                o["spec"]["serviceAccountName"] = "sa".into();
            });
            case("verify without secretRef", &|o| {
                o["spec"]["verify"] = json!({ "mode": "HEAD" });
            });
        } else if target.kind == "Bucket" {
            case("no bucketName", &|o| {
                o["spec"].as_object_mut().unwrap().remove("bucketName");
            });
            case("no endpoint", &|o| {
                o["spec"].as_object_mut().unwrap().remove("endpoint");
            });
            case("an unknown provider", &|o| {
                o["spec"]["provider"] = "minio".into()
            });
            case("sts with the gcp provider", &|o| {
                o["spec"]["provider"] = "gcp".into();
                o["spec"]["sts"] =
                    json!({ "provider": "aws", "endpoint": "https://sts.amazonaws.com" });
            });
        } else if target.kind == "ExternalArtifact" {
            case("a sourceRef without name", &|o| {
                o["spec"]["sourceRef"] = json!({ "kind": "ArtifactGenerator" });
            });
            case("a sourceRef without kind", &|o| {
                o["spec"]["sourceRef"] = json!({ "name": "monorepo" });
            });
        } else {
            case("no prune", &|o| {
                o["spec"].as_object_mut().unwrap().remove("prune");
            });
            case("an unknown source kind", &|o| {
                o["spec"]["sourceRef"]["kind"] = "HelmRepository".into();
            });
            case("an empty targetNamespace", &|o| {
                o["spec"]["targetNamespace"] = "".into()
            });
            case("a substituteFrom of an unknown kind", &|o| {
                o["spec"]["postBuild"]["substituteFrom"][0]["kind"] = "Pod".into();
            });
            case("a kubeConfig with both references", &|o| {
                o["spec"]["kubeConfig"] = json!({
                    "configMapRef": { "name": "a" },
                    "secretRef": { "name": "b" }
                });
            });
            case("an empty kubeConfig", &|o| {
                o["spec"]["kubeConfig"] = json!({})
            });
        }
        for (what, object) in cases {
            refused(&api, object, what, target.origin).await;
        }
    }

    namespace.delete().await;
}
