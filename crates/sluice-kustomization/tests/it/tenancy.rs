//! Tenancy (issue 12, defect 5), end to end through Git against the local
//! control plane: everything done on a Kustomization's behalf (apply, prune,
//! health checks and the reads behind `healthCheckExprs`) acts as its
//! service account; `--default-service-account` gives one to Kustomizations
//! without `serviceAccountName`; `--no-cross-namespace-refs` refuses
//! references into other namespaces.

use crate::support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use serde_json::json;
use sluice_api::meta::{FluxObject, STALLED_CONDITION};
use sluice_testsupport::TestNamespace;

/// A service account that may manage ConfigMaps in `ns`, and nothing else.
async fn configmap_deployer(env: &Env, name: &str) {
    let ns = env.name();
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("ServiceAccount");
    env.ns
        .api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"],
            "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}]}))
    .expect("Role");
    env.ns
        .api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .expect("create Role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}))
    .expect("RoleBinding");
    env.ns
        .api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");
}

/// A Deployment in another namespace, which the tenant may not read.
async fn foreign_deployment(client: &kube::Client) -> TestNamespace {
    let other = TestNamespace::create(client, "ks-tenancy-other").await;
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "probe"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
            }
        }
    }))
    .expect("Deployment");
    other
        .api::<Deployment>()
        .create(&PostParams::default(), &deploy)
        .await
        .expect("create Deployment");
    other
}

#[tokio::test]
async fn health_checks_and_cel_run_as_the_service_account() {
    let env = Env::start("ks-tenancy").await;
    configmap_deployer(&env, "tenant").await;
    let other = foreign_deployment(&env.client).await;

    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    // With the controller's rights the expression holds at once (every
    // Deployment is "current"); as the tenant the object cannot be read.
    env.kustomization(
        "tenant",
        json!({
            "path": "./apps",
            "serviceAccountName": "tenant",
            "timeout": "20s",
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": "probe", "namespace": other.name()}],
            "healthCheckExprs": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "current": "true"}],
        }),
    )
    .await;

    let ks = env.wait_reason("tenant", "HealthCheckFailed").await;
    let msg = ready_message(&ks);
    eprintln!("{msg}");
    let ns = env.name();
    assert!(
        msg.starts_with(&format!(
            "health check forbidden by RBAC for service account {ns}/tenant: [Deployment/{}/probe: ",
            other.name()
        )),
        "{msg}"
    );
    assert!(msg.contains("forbidden"), "{msg}");
    // The apply itself was allowed to the tenant.
    assert!(env.configmaps().get_opt("a").await.unwrap().is_some());
    other.delete().await;
}

#[tokio::test]
async fn default_service_account_impersonates_kustomizations_without_one() {
    let mut env = Env::without_controllers("ks-defsa").await;
    env.start_source("127.0.0.1:1").await;
    let mut opts = env.kustomization_options(true);
    opts.runtime.tenancy.default_service_account = Some("fallback".into());
    env.start_kustomization_with(opts).await;

    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    let rev = repo.commit("one");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps", "retryInterval": "2s"}))
        .await;

    // No such service account yet: refused as it, not applied as the
    // controller.
    let ks = env.wait_reason("apps", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    let ns = env.name();
    assert!(
        msg.starts_with(&format!(
            "apply forbidden by RBAC for service account {ns}/fallback: "
        )),
        "{msg}"
    );
    assert!(env.configmaps().get_opt("a").await.unwrap().is_none());

    // Given the rights, it applies as that account.
    configmap_deployer(&env, "fallback").await;
    env.wait_ready("apps", &rev).await;
    assert!(env.configmaps().get_opt("a").await.unwrap().is_some());

    // An explicit serviceAccountName still wins over the default.
    env.kustomization(
        "explicit",
        json!({"path": "./apps", "serviceAccountName": "nobody", "retryInterval": "2s"}),
    )
    .await;
    let ks = env.wait_reason("explicit", "ReconciliationFailed").await;
    assert!(
        ready_message(&ks).contains(&format!("service account {ns}/nobody")),
        "{}",
        ready_message(&ks)
    );
}

#[tokio::test]
async fn cross_namespace_references_are_refused_when_locked_down() {
    let mut env = Env::without_controllers("ks-xns").await;
    env.start_source("127.0.0.1:1").await;
    let mut opts = env.kustomization_options(true);
    opts.runtime.tenancy.no_cross_namespace_refs = true;
    env.start_kustomization_with(opts).await;
    let ns = env.name().to_string();

    env.kustomization(
        "foreign-source",
        json!({"path": "./apps",
            "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux-system"}}),
    )
    .await;
    env.kustomization(
        "foreign-dependency",
        json!({"path": "./apps",
            "dependsOn": [{"name": "infra", "namespace": "flux-system"}]}),
    )
    .await;
    // A reference that names its own namespace is not cross-namespace.
    env.kustomization(
        "own-namespace",
        json!({"path": "./apps",
            "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": ns}}),
    )
    .await;

    let stalled = |k: &sluice_api::Kustomization| {
        sluice_api::meta::is_condition_true(k.conditions(), STALLED_CONDITION)
    };
    let ks = env.wait_reason("foreign-source", "AccessDenied").await;
    assert_eq!(
        ready_message(&ks),
        "can't access 'GitRepository/flux-system/repo', cross-namespace references have been blocked"
    );
    assert!(stalled(&ks));
    let ks = env.wait_reason("foreign-dependency", "AccessDenied").await;
    assert_eq!(
        ready_message(&ks),
        "can't access 'Kustomization/flux-system/infra', cross-namespace references have been blocked"
    );
    assert!(stalled(&ks));
    // Its own namespace's source is merely missing.
    let ks = env.wait_reason("own-namespace", "ArtifactFailed").await;
    assert!(!stalled(&ks), "{:?}", ready(&ks));
}
