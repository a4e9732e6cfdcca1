//! A whole Flux repository rendered offline, as the cluster would end up (what flux-local gives
//! its users, on the one render pipeline): the entry point (`clusters/NAME`, applied as the
//! bootstrap's `flux-system` Kustomization applies it), then every Kustomization found in what
//! was rendered, in `dependsOn` order, each from its `spec.path` in the same checkout, with
//! `postBuild` variables from the ConfigMaps and Secrets the repository defines and SOPS
//! decrypted when keys are given.
//!
//! A Kustomization whose source is not this repository (another GitRepository, an
//! OCIRepository), or that depends on one that is not rendered, is reported as skipped, with
//! why; a failing one is reported with its error and the others still render.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use sluice_api::Kustomization;
use sluice_api::kustomization::KustomizationSpec;

use crate::inputs::{Decryption, Found, Inputs, combine_vars};
use crate::{Owner, RenderOptions, checkout_local, render};

/// One Kustomization's result.
#[derive(Debug)]
pub struct Rendered {
    pub namespace: String,
    pub name: String,
    /// `spec.path`.
    pub path: String,
    /// The objects, or why they could not be rendered.
    pub result: Result<Vec<Value>, String>,
}

/// What a cluster build did.
#[derive(Debug, Default)]
pub struct ClusterBuild {
    /// In the order rendered (the entry point first).
    pub rendered: Vec<Rendered>,
    /// Kustomizations not rendered: `namespace/name` and why.
    pub skipped: Vec<(String, String)>,
    /// HelmReleases found, as rendered (variables substituted), for the caller to render
    /// with their charts.
    pub helm_releases: Vec<Value>,
    /// HelmRepositories, OCIRepositories and HelmCharts found (where HelmReleases' charts come
    /// from).
    pub helm_sources: Vec<Value>,
    /// The data of the ConfigMaps and Secrets the repository defines (Secrets decoded), by
    /// (namespace, kind, name): what `valuesFrom` reads.
    pub data: BTreeMap<(String, String, String), BTreeMap<String, String>>,
    /// The repository's work tree (where a chart from the repository itself is).
    pub root: std::path::PathBuf,
}

/// The name the bootstrap gives the GitRepository of the repository itself.
pub const BOOTSTRAP_SOURCE: &str = "flux-system";

fn id(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Renders the repository whose work tree holds `entry` (a directory, e.g.
/// `clusters/home`). `identities`: age keys for `spec.decryption`.
pub fn build_cluster(
    entry: &Path,
    identities: Option<Arc<sluice_sops::Identities>>,
    opts: &RenderOptions,
) -> Result<ClusterBuild, String> {
    let (_tmp, root, entry_path) = checkout_local(entry)?;
    let mut out = ClusterBuild::default();
    let mut state = State::default();
    // The bootstrap's own Kustomization (which applies the entry point) is the entry point.
    state.seen.insert(id(BOOTSTRAP_SOURCE, BOOTSTRAP_SOURCE));
    let entry_spec: KustomizationSpec = serde_json::from_value(serde_json::json!({
        "interval": "10m", "path": entry_path, "prune": true,
        "sourceRef": {"kind": "GitRepository", "name": BOOTSTRAP_SOURCE},
    }))
    .map_err(|e| e.to_string())?;
    let entry_result = render_one(
        &root,
        &entry_spec,
        BOOTSTRAP_SOURCE,
        BOOTSTRAP_SOURCE,
        &Inputs::default(),
        opts,
    );
    if let Ok(objects) = &entry_result {
        state.record(objects);
    }
    out.rendered.push(Rendered {
        namespace: BOOTSTRAP_SOURCE.into(),
        name: BOOTSTRAP_SOURCE.into(),
        path: entry_path.clone(),
        result: entry_result,
    });
    let mut done: BTreeSet<String> = BTreeSet::from([id(BOOTSTRAP_SOURCE, BOOTSTRAP_SOURCE)]);
    let mut failed: BTreeSet<String> = BTreeSet::new();
    loop {
        // The next Kustomization whose dependencies are all rendered.
        let ready = state.pending.iter().position(|ks| {
            let ns = ks.metadata.namespace.as_deref().unwrap_or_default();
            ks.spec
                .depends_on
                .iter()
                .flatten()
                .all(|d| done.contains(&id(d.namespace.as_deref().unwrap_or(ns), &d.name)))
        });
        let Some(i) = ready else { break };
        let ks = state.pending.remove(i);
        let ns = ks.metadata.namespace.clone().unwrap_or_default();
        let name = ks.metadata.name.clone().unwrap_or_default();
        let key = id(&ns, &name);
        let source = &ks.spec.source_ref;
        let source_ns = source.namespace.as_deref().unwrap_or(&ns);
        let source_kind = source.kind.to_string();
        if source_kind != "GitRepository"
            || state.other_sources.contains(&id(source_ns, &source.name))
        {
            out.skipped.push((
                key.clone(),
                format!(
                    "its source {source_kind} {source_ns}/{} is not this repository",
                    source.name
                ),
            ));
            failed.insert(key);
            continue;
        }
        let result = inputs_for(&ks.spec, &ns, &state.data, identities.clone())
            .and_then(|inputs| render_one(&root, &ks.spec, &name, &ns, &inputs, opts));
        match &result {
            Ok(objects) => {
                state.record(objects);
                done.insert(key);
            }
            Err(_) => {
                failed.insert(key);
            }
        }
        out.rendered.push(Rendered {
            namespace: ns,
            name,
            path: ks.spec.path.clone().unwrap_or_default(),
            result,
        });
    }
    out.skipped.append(&mut state.invalid);
    out.helm_releases = std::mem::take(&mut state.helm);
    out.helm_sources = std::mem::take(&mut state.helm_sources);
    out.data = std::mem::take(&mut state.data);
    out.root = crate::repository_root(entry);
    // What is left waits on something not rendered (missing, failed, skipped, or a cycle).
    for ks in std::mem::take(&mut state.pending) {
        let ns = ks.metadata.namespace.clone().unwrap_or_default();
        let missing: Vec<String> = ks
            .spec
            .depends_on
            .iter()
            .flatten()
            .map(|d| id(d.namespace.as_deref().unwrap_or(&ns), &d.name))
            .filter(|d| !done.contains(d))
            .map(|d| {
                if failed.contains(&d) {
                    format!("{d} (not rendered)")
                } else if state.seen.contains(&d) {
                    format!("{d} (waiting in a cycle)")
                } else {
                    format!("{d} (not defined in the repository)")
                }
            })
            .collect();
        out.skipped.push((
            id(&ns, ks.metadata.name.as_deref().unwrap_or_default()),
            format!("it depends on {}", missing.join(", ")),
        ));
    }
    Ok(out)
}

/// What the renders so far defined.
#[derive(Default)]
struct State {
    /// ConfigMaps and Secrets, by (namespace, kind, name).
    data: BTreeMap<(String, String, String), BTreeMap<String, String>>,
    /// GitRepositories other than the repository's own.
    other_sources: BTreeSet<String>,
    /// Kustomizations found and not rendered yet.
    pending: Vec<Kustomization>,
    /// Kustomizations found.
    seen: BTreeSet<String>,
    /// Kustomizations that are not valid objects, with why.
    invalid: Vec<(String, String)>,
    /// HelmReleases found.
    helm: Vec<Value>,
    /// HelmRepositories, OCIRepositories and HelmCharts found.
    helm_sources: Vec<Value>,
}

impl State {
    fn record(&mut self, objects: &[Value]) {
        for o in objects {
            let kind = o["kind"].as_str().unwrap_or_default();
            let group = o["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .split('/')
                .next()
                .unwrap_or_default();
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or(BOOTSTRAP_SOURCE)
                .to_string();
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match (kind, group) {
                ("ConfigMap", "v1") => {
                    let d = string_map(&o["data"]);
                    self.data.insert((ns, "ConfigMap".into(), name), d);
                }
                ("Secret", "v1") => {
                    use base64::Engine;
                    let mut d: BTreeMap<String, String> = o["data"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(v.as_str().unwrap_or_default())
                                .ok()?;
                            Some((k.clone(), String::from_utf8_lossy(&bytes).into_owned()))
                        })
                        .collect();
                    d.extend(string_map(&o["stringData"]));
                    self.data.insert((ns, "Secret".into(), name), d);
                }
                ("GitRepository", "source.toolkit.fluxcd.io") if name != BOOTSTRAP_SOURCE => {
                    self.other_sources.insert(id(&ns, &name));
                }
                ("HelmRelease", "helm.toolkit.fluxcd.io") => {
                    let mut hr = o.clone();
                    hr["metadata"]["namespace"] = ns.into();
                    self.helm.push(hr);
                }
                ("HelmRepository" | "OCIRepository" | "HelmChart", "source.toolkit.fluxcd.io") => {
                    let mut src = o.clone();
                    src["metadata"]["namespace"] = ns.into();
                    self.helm_sources.push(src);
                }
                ("Kustomization", "kustomize.toolkit.fluxcd.io") => {
                    let key = id(&ns, &name);
                    if !self.seen.insert(key.clone()) {
                        continue;
                    }
                    let mut obj = o.clone();
                    obj["metadata"]["namespace"] = ns.into();
                    match serde_json::from_value::<Kustomization>(obj) {
                        Ok(ks) => self.pending.push(ks),
                        Err(e) => self
                            .invalid
                            .push((key, format!("not a valid Kustomization: {e}"))),
                    }
                }
                _ => {}
            }
        }
    }
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

fn inputs_for(
    spec: &KustomizationSpec,
    ns: &str,
    data: &BTreeMap<(String, String, String), BTreeMap<String, String>>,
    identities: Option<Arc<sluice_sops::Identities>>,
) -> Result<Inputs, String> {
    let mut found = Found::new();
    for r in spec
        .post_build
        .iter()
        .flat_map(|pb| pb.substitute_from.iter().flatten())
    {
        let kind = r.kind.to_string();
        let d = data
            .get(&(ns.to_string(), kind.clone(), r.name.clone()))
            .cloned();
        found.insert((kind, r.name.clone()), d);
    }
    let vars = combine_vars(spec, ns, &found)
        .map_err(|e| format!("{e} (the repository does not define it)"))?;
    let decryption = match (&spec.decryption, identities) {
        (Some(_), Some(ids)) => Some(Decryption {
            identities: ids,
            version: String::new(),
        }),
        _ => None,
    };
    Ok(Inputs { vars, decryption })
}

/// One render in a private copy of the checkout (a render writes into its directory).
fn render_one(
    root: &Path,
    spec: &KustomizationSpec,
    name: &str,
    ns: &str,
    inputs: &Inputs,
    opts: &RenderOptions,
) -> Result<Vec<Value>, String> {
    let (_tmp, copy, _) = checkout_local(root)?;
    let opts = RenderOptions {
        owner: Some(Owner {
            name: name.into(),
            namespace: ns.into(),
        }),
        ..opts.clone()
    };
    render(&copy, spec, inputs, &opts).map_err(|e| e.message)
}
