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

async fn kubeconfig_secret(env: &Env, name: &str, key: &str, kubeconfig: &str) {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = env.ns.api();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": name},
        "stringData": {key: kubeconfig},
    }))
    .expect("Secret");
    secrets
        .patch(
            name,
            &kube::api::PatchParams::apply("test").force(),
            &kube::api::Patch::Apply(&secret),
        )
        .await
        .expect("apply Secret");
}

/// `spec.kubeConfig`: the apply, prune and health checks happen on the cluster the Secret's
/// kubeconfig names (here the test control plane again, reached through the kubeconfig: a
/// wrong server in it fails the run, the right one applies); a kubeconfig that would make the
/// controller read its own files is refused, and so is a missing Secret, each named.
#[tokio::test]
async fn kube_config_applies_on_the_cluster_it_names() {
    let env = Env::start("ks-remote").await;
    let ns = env.name().to_string();
    let mut repo = Repo::new();
    repo.write("apps/a.yaml", &configmap("a", &[("v", "1")]));
    let rev = repo.commit("one");
    env.git_repository("repo", &mut repo).await;

    kubeconfig_secret(
        &env,
        "remote",
        "value",
        &sluice_testsupport::kubeconfig_text(Some("https://127.0.0.1:1")),
    )
    .await;
    env.kustomization(
        "remote",
        json!({"path": "./apps", "retryInterval": "2s",
               "kubeConfig": {"secretRef": {"name": "remote"}}}),
    )
    .await;
    let ks = env.wait_reason("remote", "ReconciliationFailed").await;
    assert!(
        ready_message(&ks).contains("127.0.0.1:1"),
        "{}",
        ready_message(&ks)
    );
    assert!(env.configmaps().get_opt("a").await.unwrap().is_none());

    // The Secret fixed: a new version of it, a new client.
    kubeconfig_secret(
        &env,
        "remote",
        "value",
        &sluice_testsupport::kubeconfig_text(None),
    )
    .await;
    env.wait_ready("remote", &rev).await;
    let cm = env
        .configmaps()
        .get_opt("a")
        .await
        .unwrap()
        .expect("applied");
    assert_eq!(
        cm.metadata.labels.unwrap_or_default()["kustomize.toolkit.fluxcd.io/name"],
        "remote"
    );

    // `key` picks the entry; a file reference in the kubeconfig is refused.
    let sneaky = sluice_testsupport::kubeconfig_text(None).replace(
        "client-key-data:",
        "client-key: /var/run/secrets/kubernetes.io/serviceaccount/token\n    x-was:",
    );
    kubeconfig_secret(&env, "sneaky", "config", &sneaky).await;
    env.kustomization(
        "sneaky",
        json!({"path": "./apps", "retryInterval": "2s",
               "kubeConfig": {"secretRef": {"name": "sneaky", "key": "config"}}}),
    )
    .await;
    let ks = env.wait_reason("sneaky", "ReconciliationFailed").await;
    let msg = ready_message(&ks);
    assert!(
        msg.contains(&format!(
            "invalid KubeConfig in secret '{ns}/sneaky': user '"
        )) && msg.contains("references a client-key file, only client-key-data is supported"),
        "{msg}"
    );

    env.kustomization(
        "absent",
        json!({"path": "./apps", "retryInterval": "2s",
               "kubeConfig": {"secretRef": {"name": "absent"}}}),
    )
    .await;
    let ks = env.wait_reason("absent", "ReconciliationFailed").await;
    assert!(
        ready_message(&ks).starts_with(&format!("unable to read KubeConfig secret '{ns}/absent'")),
        "{}",
        ready_message(&ks)
    );

    // Workload identity is not implemented: refused before anything is built.
    env.kustomization(
        "identity",
        json!({"path": "./apps", "kubeConfig": {"configMapRef": {"name": "aws"}}}),
    )
    .await;
    let ks = env.wait_reason("identity", "UnsupportedField").await;
    assert!(
        ready_message(&ks).contains("configMapRef"),
        "{}",
        ready_message(&ks)
    );
}
