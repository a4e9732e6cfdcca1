//! `spec.decryption` (SOPS with age keys) end to end through Git against the
//! local control plane, with fixtures encrypted by the real sops
//! (crates/sluice-sops/testdata).

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::*;

const ENCRYPTED: &str = include_str!("../../sluice-sops/testdata/secret-regex.sops.yaml");
const TEST_KEY: &str = include_str!("../../sluice-sops/testdata/test.agekey");
const OTHER_KEY: &str = include_str!("../../sluice-sops/testdata/other.agekey");

async fn key_secret(env: &Env, name: &str, key: &str) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": name},
                             "stringData": {"identity.agekey": key}})),
    )
    .await
    .unwrap();
}

fn sops_spec() -> serde_json::Value {
    json!({"path": "./apps",
           "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}})
}

#[tokio::test]
async fn decrypts_secrets_and_a_rotated_wrong_key_fails_naming_the_object() {
    let env = Env::start("ks-sops").await;
    key_secret(&env, "sops-age", TEST_KEY).await;
    let mut repo = Repo::new();
    repo.write("apps/secret.yaml", ENCRYPTED);
    repo.write("apps/cm.yaml", &configmap("plain", &[("k", "v")]));
    let rev = repo.commit("encrypted secret");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", sops_spec()).await;
    env.wait_ready("apps", &rev).await;

    // The applied Secret holds the plaintext (targetNamespace moved it:
    // the MAC is not checked after the build, as in Flux).
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    let s = secrets.get("api-key").await.unwrap();
    let data = s.data.unwrap();
    assert_eq!(data["key"].0, b"abc123");
    assert_eq!(data["cert"].0, b"-----BEGIN CERTIFICATE-----");
    assert!(env.configmaps().get("plain").await.is_ok());

    // Rotating the key Secret to a key that is not a recipient re-renders
    // (the render cache keys on the Secret's resourceVersion) and fails.
    key_secret(&env, "sops-age", OTHER_KEY).await;
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "rotate"}}}),
    )
    .await;
    let k = env.wait_reason("apps", "BuildFailed").await;
    let msg = ready_message(&k);
    let ns = env.name();
    assert!(
        msg.starts_with(&format!(
            "decryption failed for 'Secret/{ns}/api-key': no age identity matches"
        )),
        "{msg}"
    );
    assert!(
        !msg.contains("abc123") && !msg.contains("AGE-SECRET-KEY"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_missing_decryption_secret_is_named() {
    let env = Env::start("ks-sops-missing").await;
    let mut repo = Repo::new();
    repo.write("apps/secret.yaml", ENCRYPTED);
    repo.commit("encrypted secret");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", sops_spec()).await;
    let k = env.wait_reason("apps", "BuildFailed").await;
    let msg = ready_message(&k);
    assert_eq!(
        msg,
        format!("sops decryption Secret '{}/sops-age' not found", env.name())
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    assert!(secrets.get_opt("api-key").await.unwrap().is_none());
}
