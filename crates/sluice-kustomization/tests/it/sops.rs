//! `spec.decryption` (SOPS with age keys) end to end through Git against the
//! local control plane, with fixtures encrypted by the real sops
//! (crates/sluice-sops/testdata).

use crate::support::*;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const ENCRYPTED: &str = include_str!("../../../sluice-sops/testdata/secret-regex.sops.yaml");
const TEST_KEY: &str = include_str!("../../../sluice-sops/testdata/test.agekey");
const OTHER_KEY: &str = include_str!("../../../sluice-sops/testdata/other.agekey");

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

/// Points `sops-age` at a key that is not a recipient, asks for a
/// reconcile (the render cache keys on the Secret's resourceVersion, so it
/// re-renders) and returns the BuildFailed message.
async fn rotate_to_other_key_and_fail(env: &Env) -> String {
    key_secret(env, "sops-age", OTHER_KEY).await;
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "rotate"}}}),
    )
    .await;
    ready_message(&env.wait_reason("apps", "BuildFailed").await)
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

    // Rotating the key Secret to a key that is not a recipient fails.
    let msg = rotate_to_other_key_and_fail(&env).await;
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

/// Flux decrypts a secretGenerator's sources before the build; so does
/// sluice: a dotenv file (`envs:`), a binary file (`files:` with a key),
/// in a base reached through `resources:`.
#[tokio::test]
async fn secret_generator_sources_are_decrypted_before_the_build() {
    let env = Env::start("ks-sops-gen").await;
    key_secret(&env, "sops-age", TEST_KEY).await;
    let mut repo = Repo::new();
    repo.write(
        "apps/base/app.sops.env",
        include_str!("../../../sluice-sops/testdata/app.sops.env"),
    );
    repo.write(
        "apps/base/cert.sops.txt",
        include_str!("../../../sluice-sops/testdata/cert.sops.txt"),
    );
    repo.write(
        "apps/base/kustomization.yaml",
        "secretGenerator:\n- name: app\n  envs:\n  - app.sops.env\n  files:\n  - tls.crt=cert.sops.txt\n  options:\n    disableNameSuffixHash: true\n",
    );
    repo.write("apps/kustomization.yaml", "resources:\n- base\n");
    let rev = repo.commit("encrypted generator sources");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", sops_spec()).await;
    env.wait_ready("apps", &rev).await;

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    let data = secrets.get("app").await.unwrap().data.unwrap();
    assert_eq!(data["DB_USER"].0, b"app");
    assert_eq!(data["DB_PASSWORD"].0, b"s3cr3t=with=equals");
    // kustomize reads `\n` in an env value literally.
    assert_eq!(data["MULTI"].0, b"line one\\nline two");
    assert_eq!(
        data["tls.crt"].0,
        include_bytes!("../../../sluice-sops/testdata/cert.plain.txt")
    );
    assert!(!data.contains_key("sops_mac"), "{:?}", data.keys());

    // With the other key, the failure names the file, not a value. (It
    // fails at all only because the shared artifact cache still holds the
    // ciphertext: the checkout's files are hard links into it, and the
    // decrypted file replaced its link instead of writing through it.)
    let msg = rotate_to_other_key_and_fail(&env).await;
    assert!(
        msg.starts_with("decryption failed for apps/base/cert.sops.txt: no age identity matches"),
        "{msg}"
    );
    assert!(!msg.contains("s3cr3t"), "{msg}");
}
