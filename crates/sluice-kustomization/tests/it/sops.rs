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
            "decryption failed for 'Secret/{ns}/api-key': no key matches"
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
        msg.starts_with("decryption failed for apps/base/cert.sops.txt: no key matches"),
        "{msg}"
    );
    assert!(!msg.contains("s3cr3t"), "{msg}");
}

/// Flux 2.7's `--sops-age-secret`: a Kustomization with `spec.decryption`
/// and no `secretRef` decrypts with the controller's own age keys; without
/// that Secret the failure names it and the flag.
#[tokio::test]
async fn the_controller_wide_age_secret_decrypts_without_a_secret_ref() {
    let mut env = Env::without_controllers("ks-sops-global").await;
    env.start_source("127.0.0.1:1").await;
    let mut opts = env.kustomization_options(true);
    // The controller's namespace is the test's (RUNTIME_NAMESPACE in a pod).
    opts.sops_age_secret = Some(sluice_kustomization::AgeSecret {
        namespace: env.name().to_string(),
        name: "global-age".into(),
    });
    env.start_kustomization_with(opts).await;
    let mut repo = Repo::new();
    repo.write("apps/secret.yaml", ENCRYPTED);
    let rev = repo.commit("encrypted secret");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "decryption": {"provider": "sops"}}),
    )
    .await;
    let k = env.wait_reason("apps", "BuildFailed").await;
    assert_eq!(
        ready_message(&k),
        format!(
            "sops SOPS age decryption Secret '{}/global-age' not found (the controller's --sops-age-secret)",
            env.name()
        )
    );

    key_secret(&env, "global-age", TEST_KEY).await;
    env.patch_ks(
        "apps",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "key-added"}}}),
    )
    .await;
    env.wait_ready("apps", &rev).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    let data = secrets.get("api-key").await.unwrap().data.unwrap();
    assert_eq!(data["key"].0, b"abc123");
}

/// A Secret that still carries its `sops` block is never sent to the API
/// server (it would store the ciphertext as the Secret's values): Flux's
/// message, nothing applied. (`decrypt: disabled` lets it through: unit
/// test in sluice-render.)
#[tokio::test]
async fn an_encrypted_secret_without_decryption_is_refused_with_fluxs_message() {
    let env = Env::start("ks-sops-none").await;
    let mut repo = Repo::new();
    repo.write("apps/secret.yaml", ENCRYPTED);
    repo.write("apps/cm.yaml", &configmap("plain", &[("k", "v")]));
    repo.commit("encrypted secret, no decryption");
    env.git_repository("repo", &mut repo).await;
    env.kustomization("apps", json!({"path": "./apps"})).await;
    let k = env.wait_reason("apps", "ReconciliationFailed").await;
    assert_eq!(
        ready_message(&k),
        format!(
            "Secret/{}/api-key is SOPS encrypted, configuring decryption is required for this secret to be reconciled",
            env.name()
        )
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    assert!(secrets.get_opt("api-key").await.unwrap().is_none());
    assert!(env.configmaps().get_opt("plain").await.unwrap().is_none());
}

/// `spec.decryption.serviceAccountName` authenticates to cloud KMS in Flux;
/// sluice has no KMS, so it is refused by name instead of ignored.
#[tokio::test]
async fn a_decryption_service_account_is_refused_not_ignored() {
    let env = Env::start("ks-sops-sa").await;
    key_secret(&env, "sops-age", TEST_KEY).await;
    let mut repo = Repo::new();
    repo.write("apps/secret.yaml", ENCRYPTED);
    repo.commit("encrypted secret");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps",
               "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"},
                              "serviceAccountName": "kms"}}),
    )
    .await;
    let k = env.wait_reason("apps", "UnsupportedField").await;
    let msg = ready_message(&k);
    assert!(
        msg.starts_with("spec.decryption.serviceAccountName is not supported by sluice"),
        "{msg}"
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    assert!(secrets.get_opt("api-key").await.unwrap().is_none());
}

#[tokio::test]
async fn pgp_keys_in_the_secret_decrypt_as_in_fluxs_sops_guide() {
    let env = Env::start("ks-sops-pgp").await;
    // The guide's Secret: `sops.asc` from `gpg --export-secret-keys --armor`.
    let api: Api<Secret> = Api::namespaced(env.client.clone(), env.name());
    api.patch(
        "sops-gpg",
        &PatchParams::apply("test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sops-gpg"},
            "stringData": {"sops.asc": include_str!("../../../sluice-sops/testdata/test-rsa.asc")}})),
    )
    .await
    .unwrap();
    let mut repo = Repo::new();
    repo.write(
        "apps/secret.yaml",
        include_str!("../../../sluice-sops/testdata/secret.pgp-rsa.sops.yaml"),
    );
    let rev = repo.commit("a secret encrypted for a PGP key");
    env.git_repository("repo", &mut repo).await;
    env.kustomization(
        "apps",
        json!({"path": "./apps",
               "decryption": {"provider": "sops", "secretRef": {"name": "sops-gpg"}}}),
    )
    .await;
    env.wait_ready("apps", &rev).await;
    let s = api.get("db-credentials").await.unwrap();
    let data = s.data.unwrap();
    assert_eq!(data["username"].0, b"admin");
    assert_eq!(data["token"].0, b"super-secret-token");
}
