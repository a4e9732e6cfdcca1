//! What a render needs from the cluster besides the artifact: the
//! `postBuild` variables (`substitute`, `substituteFrom` ConfigMaps and
//! Secrets) and, for `spec.decryption`, the age identities of the
//! decryption Secret. Read the way Flux's kustomize-controller reads them;
//! the controller and `sluice build/diff kustomization` both call [`read`].

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client, ResourceExt};
use sluice_api::Kustomization;
use sluice_api::kustomization::{
    DecryptionProvider, KustomizationSpec, SubstituteKind, SubstituteStrategy,
};

/// The inputs of one render. Its `Debug` shows variable names, never values.
#[derive(Clone, Default)]
pub struct Inputs {
    /// `postBuild` variables; `None`: no substitution at all (no
    /// `postBuild`, or nothing declared and no `substituteStrategy: Always`).
    pub vars: Option<BTreeMap<String, String>>,
    /// `spec.decryption`; `None`: nothing is decrypted.
    pub decryption: Option<Decryption>,
}

/// The keys of `spec.decryption`.
#[derive(Clone)]
pub struct Decryption {
    /// age identities from the Secret's `*.agekey` entries (none without
    /// `secretRef`).
    pub identities: Arc<sluice_sops::Identities>,
    /// `<uid>/<resourceVersion>` of the Secret (empty without one), for
    /// render caches: a rotated key re-renders.
    pub version: String,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field(
                "vars",
                &self.vars.as_ref().map(|v| v.keys().collect::<Vec<_>>()),
            )
            .field(
                "decryption",
                &self.decryption.as_ref().map(|d| d.version.as_str()),
            )
            .finish()
    }
}

/// Reads the inputs of `ks` from the cluster (in the Kustomization's
/// namespace, with `client`'s rights). Errors name the object, never a value.
/// `age_secret` is the controller's `--sops-age-secret` (none for the CLI).
pub async fn read(
    client: &Client,
    ks: &Kustomization,
    age_secret: Option<&AgeSecret>,
) -> Result<Inputs, String> {
    let vars = substitution_vars(client, ks).await?;
    let decryption = decryption_keys(client, ks, age_secret).await?;
    Ok(Inputs { vars, decryption })
}

/// The inputs Flux's `flux build kustomization --dry-run` uses, without a
/// cluster: `substituteFrom` is skipped (only `substitute` is used) and
/// nothing is decrypted.
pub fn offline(spec: &KustomizationSpec) -> Inputs {
    let Some(pb) = &spec.post_build else {
        return Inputs::default();
    };
    let vars = pb
        .substitute
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), without_newlines(v)))
        .collect();
    Inputs {
        vars: declared(spec).then_some(vars),
        decryption: None,
    }
}

/// A variable's value as Flux uses it: every line break removed (values
/// from `substitute`, ConfigMaps and Secrets alike, so a Secret written
/// with a trailing newline substitutes without it).
fn without_newlines(v: &str) -> String {
    v.replace('\n', "")
}

/// Flux substitutes only when some variable or some source of variables is
/// declared, unless `substituteStrategy: Always` (then `${x:=default}`
/// applies even without either).
fn declared(spec: &KustomizationSpec) -> bool {
    let Some(pb) = &spec.post_build else {
        return false;
    };
    pb.substitute.as_ref().is_some_and(|m| !m.is_empty())
        || pb.substitute_from.as_ref().is_some_and(|l| !l.is_empty())
        || pb.substitute_strategy == Some(SubstituteStrategy::Always)
}

/// The controller-wide age keys (`--sops-age-secret`, Flux 2.7): a Secret
/// in the controller's namespace whose `*.agekey` entries decrypt for every
/// Kustomization with `spec.decryption` but no `secretRef`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeSecret {
    pub namespace: String,
    pub name: String,
}

/// `spec.decryption` as Flux's decryptor imports keys: the Secret
/// `secretRef` in the Kustomization's namespace, else the controller-wide
/// `age_secret`, every key ending in `.agekey` holding age identities and
/// every key ending in `.asc` armored PGP secret keys (without a passphrase,
/// as Flux's SOPS guide exports them). Other key kinds (`sops.vault-token`,
/// cloud KMS credentials) are not used; a document encrypted only for them
/// fails naming the method.
pub async fn decryption_keys(
    client: &Client,
    ks: &Kustomization,
    age_secret: Option<&AgeSecret>,
) -> Result<Option<Decryption>, String> {
    let Some(d) = &ks.spec.decryption else {
        return Ok(None);
    };
    if d.provider != DecryptionProvider::Sops {
        return Err(format!(
            "decryption provider '{}' is not supported (only 'sops')",
            d.provider
        ));
    }
    // Flux's words for each; the controller-wide one also names its flag
    // when it is missing.
    let (ns, name, what, hint) = match (&d.secret_ref, age_secret) {
        (Some(r), _) => (
            ks.namespace().unwrap_or_default(),
            r.name.clone(),
            "sops decryption Secret",
            "",
        ),
        (None, Some(g)) => (
            g.namespace.clone(),
            g.name.clone(),
            "sops SOPS age decryption Secret",
            " (the controller's --sops-age-secret)",
        ),
        (None, None) => {
            return Ok(Some(Decryption {
                identities: Arc::new(sluice_sops::Identities::new()),
                version: String::new(),
            }));
        }
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api
        .get_opt(&name)
        .await
        .map_err(|e| format!("cannot get {what} '{ns}/{name}': {e}"))?
        .ok_or_else(|| format!("{what} '{ns}/{name}' not found{hint}"))?;
    let mut ids = sluice_sops::Identities::new();
    for (k, v) in secret.data.iter().flatten() {
        let pgp = k.ends_with(".asc");
        if !k.ends_with(".agekey") && !pgp {
            continue;
        }
        let failed = |e: &dyn std::fmt::Display| {
            format!("failed to import '{k}' data from {what} '{ns}/{name}': {e}")
        };
        let text = std::str::from_utf8(&v.0).map_err(|_| failed(&"not UTF-8"))?;
        if pgp {
            ids.import_pgp(text).map_err(|e| failed(&e))?;
        } else {
            ids.import(text).map_err(|e| failed(&e))?;
        }
    }
    let version = format!(
        "{}/{}",
        secret.metadata.uid.unwrap_or_default(),
        secret.metadata.resource_version.unwrap_or_default()
    );
    Ok(Some(Decryption {
        identities: Arc::new(ids),
        version,
    }))
}

/// The `postBuild` variables: `substituteFrom` in order (later sources
/// override earlier ones; a missing optional source is skipped), then
/// `substitute`. `None` when nothing is to be substituted (see [`Inputs::vars`]).
pub async fn substitution_vars(
    client: &Client,
    ks: &Kustomization,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let Some(pb) = &ks.spec.post_build else {
        return Ok(None);
    };
    let ns = ks.namespace().unwrap_or_default();
    let mut found = Found::new();
    for r in pb.substitute_from.iter().flatten() {
        let kind = r.kind.to_string();
        let data: Option<BTreeMap<String, String>> = match r.kind {
            SubstituteKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
                api.get_opt(&r.name)
                    .await
                    .map_err(|e| format!("substitute from '{kind}/{}' failed: {e}", r.name))?
                    .map(|cm| cm.data.unwrap_or_default().into_iter().collect())
            }
            SubstituteKind::Secret => {
                let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                api.get_opt(&r.name)
                    .await
                    .map_err(|e| format!("substitute from '{kind}/{}' failed: {e}", r.name))?
                    .map(|s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect()
                    })
            }
            _ => None,
        };
        found.insert((kind, r.name.clone()), data);
    }
    combine_vars(&ks.spec, &ns, &found)
}

/// The data of the ConfigMaps and Secrets a Kustomization's `substituteFrom` names, by
/// (kind, name): `None` when the object does not exist.
pub type Found = BTreeMap<(String, String), Option<BTreeMap<String, String>>>;

/// The variables of `spec` from what its `substituteFrom` found (pure; the controller reads the
/// objects from the cluster, `sluice build cluster` from the repository): sources in order
/// (later ones override earlier ones; a missing optional source is skipped), then
/// `substitute`; line breaks removed from every value. `None` when nothing is to be
/// substituted (see [`Inputs::vars`]).
pub fn combine_vars(
    spec: &KustomizationSpec,
    ns: &str,
    found: &Found,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let Some(pb) = &spec.post_build else {
        return Ok(None);
    };
    let mut vars = BTreeMap::new();
    for r in pb.substitute_from.iter().flatten() {
        let kind = r.kind.to_string();
        if !matches!(r.kind, SubstituteKind::ConfigMap | SubstituteKind::Secret) {
            return Err(format!(
                "substitute from '{kind}/{}': unsupported kind",
                r.name
            ));
        }
        match found
            .get(&(kind.clone(), r.name.clone()))
            .cloned()
            .flatten()
        {
            Some(d) => vars.extend(d.into_iter().map(|(k, v)| (k, without_newlines(&v)))),
            None if r.is_optional() => {}
            None => {
                return Err(format!(
                    "substitute from '{kind}/{}' failed: {kind} {ns}/{} not found",
                    r.name, r.name
                ));
            }
        }
    }
    for (k, v) in pb.substitute.iter().flatten() {
        vars.insert(k.clone(), without_newlines(v));
    }
    if !declared(spec) {
        return Ok(None);
    }
    Ok(Some(vars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::kustomization::PostBuild;

    fn spec(pb: Option<PostBuild>) -> KustomizationSpec {
        let mut s: KustomizationSpec = serde_json::from_value(serde_json::json!({
            "interval": "1m",
            "prune": false,
            "sourceRef": {"kind": "GitRepository", "name": "repo"}
        }))
        .expect("spec");
        s.post_build = pb;
        s
    }

    #[test]
    fn values_lose_their_line_breaks_as_in_flux() {
        let pb: PostBuild = serde_json::from_value(serde_json::json!({
            "substitute": {"token": "abc\n", "multi": "a\nb\n"}
        }))
        .expect("pb");
        let vars = offline(&spec(Some(pb))).vars.expect("vars");
        assert_eq!(vars["token"], "abc");
        assert_eq!(vars["multi"], "ab");
        assert_eq!(without_newlines("x\r\n"), "x\r");
    }

    #[test]
    fn offline_uses_substitute_only_and_flux_rule() {
        assert!(offline(&spec(None)).vars.is_none());
        let pb: PostBuild = serde_json::from_value(serde_json::json!({})).expect("pb");
        assert!(offline(&spec(Some(pb))).vars.is_none());
        let pb: PostBuild =
            serde_json::from_value(serde_json::json!({"substituteStrategy": "Always"}))
                .expect("pb");
        assert_eq!(offline(&spec(Some(pb))).vars, Some(BTreeMap::new()));
        let pb: PostBuild = serde_json::from_value(serde_json::json!({
            "substitute": {"a": "1"},
            "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]
        }))
        .expect("pb");
        let i = offline(&spec(Some(pb)));
        assert_eq!(i.vars, Some(BTreeMap::from([("a".into(), "1".into())])));
        assert!(i.decryption.is_none());
        assert!(!format!("{i:?}").contains('1'));
    }
}
