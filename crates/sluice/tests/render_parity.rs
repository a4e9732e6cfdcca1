//! The CLI renders what the controller applies: one Git repository with
//! SOPS-encrypted Secrets (an encrypted manifest and an encrypted
//! secretGenerator source) and postBuild substitutions (`substitute`, and
//! `substituteFrom` a ConfigMap and a Secret) is reconciled by
//! `sluice controller` on the local control plane, then rendered by
//! `sluice build kustomization` against the same cluster; the objects must
//! be the same (the live objects normalised for what the server sets), and
//! `sluice diff kustomization` must find no change (Secret values
//! included).

mod support;

use sluice_testsupport::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use serde_json::{Value, json};
use sluice_api::meta::ObjectId;
use sluice_api::{GitRepository, Kustomization};
use sluice_testsupport::git_server::git;
use support::*;

const ENCRYPTED: &str = include_str!("../../sluice-sops/testdata/secret-regex.sops.yaml");
const ENCRYPTED_ENV: &str = include_str!("../../sluice-sops/testdata/app.sops.env");
const TEST_KEY: &str = include_str!("../../sluice-sops/testdata/test.agekey");

/// A `sluice controller` process, killed on drop.
struct Controller {
    child: Child,
    log: std::path::PathBuf,
}

impl Controller {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start_controller(ns: &str, dir: &Path) -> Controller {
    let log = dir.join("controller.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin())
        .args([
            "controller",
            "--watch-namespace",
            ns,
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--storage-addr",
            &format!("127.0.0.1:{}", free_port()),
            "--storage-path",
            dir.join("storage").to_str().unwrap(),
            "--reloader=false",
        ])
        .env("KUBECONFIG", sluice_testsupport::kubeconfig_path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("starting sluice controller");
    Controller { child, log }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

async fn apply<K>(api: &Api<K>, name: &str, obj: Value)
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("sluice-test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

/// The live object for a rendered one.
async fn live(client: &kube::Client, o: &Value) -> Value {
    let api_version = o["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, o["kind"].as_str().unwrap());
    let (ar, _) = pinned_kind(client, &gvk).await.unwrap();
    let ns = o["metadata"]["namespace"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let obj = api
        .get(o["metadata"]["name"].as_str().unwrap())
        .await
        .unwrap();
    serde_json::to_value(obj).unwrap()
}

/// `want` is contained in `got` (maps: every key of `want`, recursively;
/// anything else: equal). What the server adds (uid, managedFields,
/// defaults) is so left out of the comparison.
fn contained(want: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let sub = format!("{at}.{k}");
                let Some(gv) = g.get(k) else {
                    return Err(format!("{sub}: missing in the cluster"));
                };
                contained(v, gv, &sub)?;
            }
            Ok(())
        }
        _ if want == got => Ok(()),
        _ => Err(format!("{at}: rendered {want}, applied {got}")),
    }
}

fn id_of(o: &Value) -> String {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    ObjectId::new(
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default(),
        group,
        o["kind"].as_str().unwrap_or_default(),
    )
    .to_string()
}

#[tokio::test]
async fn the_cli_renders_what_the_controller_applies() {
    let (client, ns) = setup("parity").await;
    let n = ns.name().to_string();
    let tmp = tempfile::tempdir().unwrap();

    // The repository: a bare remote and a work tree (what the CLI renders).
    let bare = tmp.path().join("repo.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["config", "user.email", "t@example.com"]);
    git(&work, &["config", "user.name", "t"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    write(&work, "apps/base/app.sops.env", ENCRYPTED_ENV);
    write(
        &work,
        "apps/base/kustomization.yaml",
        "secretGenerator:\n- name: app\n  envs:\n  - app.sops.env\n  options:\n    disableNameSuffixHash: true\n",
    );
    write(&work, "apps/secret.yaml", ENCRYPTED);
    write(
        &work,
        "apps/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    greeting: ${GREETING}\ndata:\n  greeting: ${GREETING}\n  from_cm: ${FROM_CM}\n  from_secret: ${FROM_SECRET}\n  defaulted: ${UNSET:=dflt}\n",
    );
    write(
        &work,
        "apps/literal.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: literal\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  raw: ${GREETING}\n",
    );
    write(
        &work,
        "apps/kustomization.yaml",
        "resources:\n- base\n- secret.yaml\n- settings.yaml\n- literal.yaml\n",
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "parity"]);
    git(&work, &["push", "-q", "origin", "main"]);

    // The inputs in the cluster: the age key, the variables' sources.
    apply(
        &Api::<Secret>::namespaced(client.clone(), &n),
        "sops-age",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sops-age"},
               "stringData": {"identity.agekey": TEST_KEY}}),
    )
    .await;
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &n),
        "vars",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vars"},
               "data": {"FROM_CM": "cm-value", "GREETING": "overridden-by-substitute"}}),
    )
    .await;
    apply(
        &Api::<Secret>::namespaced(client.clone(), &n),
        "vars-secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vars-secret"},
               "stringData": {"FROM_SECRET": "secret-value"}}),
    )
    .await;
    apply(
        &Api::<GitRepository>::namespaced(client.clone(), &n),
        "repo",
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "repo"},
               "spec": {"url": format!("file://{}", bare.display()), "interval": "10m",
                        "ref": {"branch": "main"}}}),
    )
    .await;
    let ks_api = Api::<Kustomization>::namespaced(client.clone(), &n);
    apply(
        &ks_api,
        "apps",
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps"},
        "spec": {
            "interval": "10m", "path": "./apps", "prune": true, "targetNamespace": n,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
            "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
            "commonMetadata": {"labels": {"team": "parity"}},
            "postBuild": {
                "substitute": {"GREETING": "hello"},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "vars"},
                    {"kind": "Secret", "name": "vars-secret"},
                    {"kind": "ConfigMap", "name": "absent", "optional": true},
                ],
            },
        }}),
    )
    .await;

    // The controller reconciles it.
    let controller = start_controller(&n, tmp.path());
    let deadline = Instant::now() + Duration::from_secs(120);
    let ks = loop {
        let ks = ks_api.get("apps").await.unwrap();
        let ready = ks
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().flatten().find(|c| c.type_ == "Ready"))
            .map(|c| (c.status.clone(), c.message.clone()));
        if let Some((s, _)) = &ready
            && s == "True"
        {
            break ks;
        }
        assert!(
            Instant::now() < deadline,
            "Kustomization not Ready: {ready:?}\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(controller);

    // The CLI renders the work tree with the Kustomization from the cluster.
    let apps = work.join("apps");
    let out = sluice(&[
        "build",
        "kustomization",
        "apps",
        "--path",
        apps.to_str().unwrap(),
        "-n",
        &n,
    ])
    .expect(0);
    let rendered: Vec<Value> = out
        .stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();

    // The same objects as the controller's inventory…
    let mut cli_ids: Vec<String> = rendered.iter().map(id_of).collect();
    cli_ids.sort();
    let mut applied_ids: Vec<String> = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    applied_ids.sort();
    assert_eq!(cli_ids, applied_ids, "{}", out.stdout);
    assert_eq!(cli_ids.len(), 4, "{}", out.stdout);

    // …with the same content. Secret values are masked in the CLI's output:
    // their keys are compared, and the applied values are the plaintext.
    for o in &rendered {
        let live = live(&client, o).await;
        let subject = id_of(o);
        if o["kind"] == "Secret" {
            let keys = |v: &Value| -> Vec<String> {
                let mut k: Vec<String> = ["data", "stringData"]
                    .iter()
                    .filter_map(|f| v[*f].as_object())
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                k.sort();
                k
            };
            assert_eq!(keys(o), keys(&live), "{subject}");
            let mut meta_only = o.clone();
            for f in ["data", "stringData"] {
                meta_only.as_object_mut().unwrap().remove(f);
            }
            contained(&meta_only, &live, &subject).unwrap();
            assert!(!out.stdout.contains("abc123"), "{}", out.stdout);
        } else {
            contained(o, &live, &subject).unwrap();
        }
    }

    // Secret values included: `sluice diff` compares the CLI's render
    // (decrypted, unmasked) with the cluster by a server-side dry-run apply.
    let diff = sluice(&[
        "diff",
        "kustomization",
        "apps",
        "--path",
        apps.to_str().unwrap(),
        "-n",
        &n,
    ])
    .expect(0);
    assert!(diff.stderr.contains("no changes"), "{}", diff.stderr);
    let api_key = rendered
        .iter()
        .find(|o| o["metadata"]["name"] == "api-key")
        .unwrap();
    assert_eq!(
        api_key["data"]["cert"], "KipTT1BTKio=",
        "masked as flux build"
    );

    // And what both did is right: decrypted, substituted, labelled.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &n);
    let key = secrets.get("api-key").await.unwrap().data.unwrap();
    assert_eq!(key["key"].0, b"abc123");
    let app = secrets.get("app").await.unwrap().data.unwrap();
    assert_eq!(app["DB_USER"].0, b"app");
    let settings = rendered
        .iter()
        .find(|o| o["metadata"]["name"] == "settings")
        .unwrap();
    assert_eq!(
        settings["data"],
        json!({"greeting": "hello", "from_cm": "cm-value",
               "from_secret": "secret-value", "defaulted": "dflt"})
    );
    assert_eq!(settings["metadata"]["labels"]["team"], "parity");
    assert_eq!(
        settings["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
        "apps"
    );
    let literal = rendered
        .iter()
        .find(|o| o["metadata"]["name"] == "literal")
        .unwrap();
    assert_eq!(literal["data"]["raw"], "${GREETING}");
    ns.delete().await;
}
