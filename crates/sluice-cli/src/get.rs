//! `sluice get sources git|oci|bucket|helm|chart|all | kustomizations | all
//! [--watch]`: flux's tables (NAME, REVISION, SUSPENDED, READY, MESSAGE).

use std::fmt::Debug;

use anyhow::Result;
use clap::{Args, Subcommand};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_api::meta::{CONDITION_FALSE, CONDITION_TRUE, FluxObject};
use sluice_api::{
    Bucket, GitRepository, HelmChart, HelmRelease, HelmRepository, Kustomization, OCIRepository,
};

use crate::kube_util::{self, not_found_or};
use crate::output::{Color, OutputFormat, Table, print_data};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(subcommand)]
    pub what: GetWhat,

    /// After listing, watch for changes and print them.
    #[arg(short = 'w', long, global = true)]
    pub watch: bool,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, global = true, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// What to get.
#[derive(Debug, Subcommand)]
pub enum GetWhat {
    /// Sources (GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart).
    #[command(subcommand, visible_alias = "source")]
    Sources(SourceKindArg),
    /// Kustomizations.
    #[command(visible_aliases = ["kustomization", "ks"])]
    Kustomizations(NameArg),
    /// HelmReleases (REVISION: the chart version of the latest release).
    #[command(visible_aliases = ["helmrelease", "hr"])]
    Helmreleases(NameArg),
    /// Every Flux object: sources, then Kustomizations, then HelmReleases.
    All,
    /// Alerts (DELIVERED: the outcome of the last notification sent for it).
    #[command(visible_alias = "alert")]
    Alerts(NameArg),
    /// Alert Providers (DELIVERED: the outcome of the last notification sent to it).
    #[command(visible_alias = "alert-provider")]
    AlertProviders(NameArg),
    /// Receivers (webhooks that request reconciles).
    #[command(visible_alias = "receiver")]
    Receivers(NameArg),
}

/// A source kind.
#[derive(Debug, Subcommand)]
pub enum SourceKindArg {
    /// GitRepository sources.
    Git(NameArg),
    /// OCIRepository sources.
    Oci(NameArg),
    /// Bucket sources.
    Bucket(NameArg),
    /// HelmRepository sources.
    Helm(NameArg),
    /// HelmChart sources.
    Chart(NameArg),
    /// Every source kind.
    All,
}

impl SourceKindArg {
    /// The kinds to list and the name asked for.
    fn kinds(&self) -> (Vec<kube_util::FluxKind>, Option<&str>) {
        use kube_util::FluxKind as K;
        match self {
            SourceKindArg::Git(n) => (vec![K::GitRepository], n.name.as_deref()),
            SourceKindArg::Oci(n) => (vec![K::OCIRepository], n.name.as_deref()),
            SourceKindArg::Bucket(n) => (vec![K::Bucket], n.name.as_deref()),
            SourceKindArg::Helm(n) => (vec![K::HelmRepository], n.name.as_deref()),
            SourceKindArg::Chart(n) => (vec![K::HelmChart], n.name.as_deref()),
            SourceKindArg::All => (K::SOURCES.to_vec(), None),
        }
    }
}

/// An optional object name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// Only this object.
    pub name: Option<String>,
}

/// One row of a listing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// The object's kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Artifact revision (sources) or last applied revision (Kustomizations).
    pub revision: String,
    /// `spec.suspend`.
    pub suspended: bool,
    /// The Ready condition's status (`True`, `False`, `Unknown`).
    pub ready: String,
    /// The Ready condition's message.
    pub message: String,
}

/// flux's readiness columns: no Ready condition reads as "waiting to be
/// reconciled"; a Ready condition of an older generation as in progress.
fn ready_and_message<K: FluxObject>(obj: &K) -> (String, String) {
    match obj.ready_condition() {
        Some(c) => {
            let stale = obj.meta().generation.is_some()
                && obj.observed_generation().is_some()
                && obj.meta().generation != obj.observed_generation();
            if stale && c.status != CONDITION_FALSE {
                ("Unknown".into(), "reconciliation in progress".into())
            } else {
                (c.status.clone(), c.message.clone())
            }
        }
        None => ("False".into(), "waiting to be reconciled".into()),
    }
}

/// A kind `sluice get` lists: how its object becomes a row.
pub trait Listed:
    FluxObject
    + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + 'static
{
    /// The row of `self`.
    fn row(&self) -> Row;
}

/// The row of a source: its Artifact's revision.
fn source_row<K: FluxObject>(
    obj: &K,
    kind: &str,
    artifact: Option<&sluice_api::meta::Artifact>,
) -> Row {
    let (ready, message) = ready_and_message(obj);
    Row {
        kind: kind.into(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        revision: artifact.map(|a| a.revision.clone()).unwrap_or_default(),
        suspended: obj.is_suspended(),
        ready,
        message,
    }
}

impl Listed for GitRepository {
    fn row(&self) -> Row {
        source_row(self, "GitRepository", self.artifact())
    }
}

impl Listed for OCIRepository {
    fn row(&self) -> Row {
        source_row(self, "OCIRepository", self.artifact())
    }
}

impl Listed for Bucket {
    fn row(&self) -> Row {
        source_row(self, "Bucket", self.artifact())
    }
}

impl Listed for HelmRepository {
    /// A HelmRepository of `type: oci` has no reconciler (no Artifact, no
    /// conditions): flux prints it ready.
    fn row(&self) -> Row {
        let mut row = source_row(self, "HelmRepository", self.artifact());
        if self.spec.is_oci() {
            row.ready = CONDITION_TRUE.into();
            row.message = "Helm repository is Ready".into();
        }
        row
    }
}

impl Listed for HelmChart {
    fn row(&self) -> Row {
        source_row(self, "HelmChart", self.artifact())
    }
}

impl Listed for Kustomization {
    fn row(&self) -> Row {
        ks_row(self)
    }
}

impl Listed for HelmRelease {
    /// flux's revision column: the chart version of the newest release, else the last
    /// attempted revision.
    fn row(&self) -> Row {
        let (ready, message) = ready_and_message(self);
        let status = self.status.as_ref();
        Row {
            kind: "HelmRelease".into(),
            namespace: self.namespace().unwrap_or_default(),
            name: self.name_any(),
            revision: status
                .and_then(|s| s.history.as_ref()?.first().map(|h| h.chart_version.clone()))
                .or_else(|| status.and_then(|s| s.last_attempted_revision.clone()))
                .unwrap_or_default(),
            suspended: self.is_suspended(),
            ready,
            message,
        }
    }
}

/// The row of a GitRepository.
pub fn git_row(g: &GitRepository) -> Row {
    g.row()
}

/// The row of a Kustomization.
pub fn ks_row(k: &Kustomization) -> Row {
    let (ready, message) = ready_and_message(k);
    Row {
        kind: "Kustomization".into(),
        namespace: k.namespace().unwrap_or_default(),
        name: k.name_any(),
        revision: k
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.clone())
            .unwrap_or_default(),
        suspended: k.is_suspended(),
        ready,
        message,
    }
}

fn table(rows: &[Row], all_namespaces: bool, prefix_kind: bool) -> Table {
    let mut header = vec![];
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]);
    let mut t = Table::new(&header);
    t.status_column = Some(if all_namespaces { 4 } else { 3 });
    for r in rows {
        let mut cells = vec![];
        if all_namespaces {
            cells.push(r.namespace.clone());
        }
        let name = if prefix_kind {
            format!("{}/{}", r.kind.to_lowercase(), r.name)
        } else {
            r.name.clone()
        };
        cells.extend([
            name,
            r.revision.clone(),
            if r.suspended { "True" } else { "False" }.to_string(),
            r.ready.clone(),
            r.message.replace('\n', " "),
        ]);
        t.row(cells);
    }
    t
}

fn api<K>(client: &Client, g: &GlobalArgs) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    if g.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &g.namespace)
    }
}

/// The rows of kind `K` (optionally one object). With `skip_missing`, a
/// kind the cluster does not serve (no CRD) is `None` instead of an error.
async fn rows_of<K: Listed>(
    client: &Client,
    g: &GlobalArgs,
    kind: kube_util::FluxKind,
    name: Option<&str>,
    skip_missing: bool,
) -> Result<Option<Vec<Row>>> {
    let api: Api<K> = api(client, g);
    match name {
        Some(n) => Ok(Some(vec![
            api.get(n)
                .await
                .map_err(|e| not_found_or(e, kind.kind(), &g.namespace, n, kind.list_command()))?
                .row(),
        ])),
        None => match api.list(&ListParams::default()).await {
            Ok(list) => Ok(Some(list.items.iter().map(Listed::row).collect())),
            Err(e) if skip_missing && kube_util::api_missing(&e) => Ok(None),
            Err(e) => Err(kube_util::user_kube_error(
                e,
                &format!("listing {}s", kind.kind()),
            )),
        },
    }
}

/// Lists the rows of one kind (optionally one object).
pub async fn list_rows(
    client: &Client,
    g: &GlobalArgs,
    kind: kube_util::FluxKind,
    name: Option<&str>,
) -> Result<Vec<Row>> {
    Ok(list_rows_of(client, g, kind, name, false)
        .await?
        .unwrap_or_default())
}

async fn list_rows_of(
    client: &Client,
    g: &GlobalArgs,
    kind: kube_util::FluxKind,
    name: Option<&str>,
    skip_missing: bool,
) -> Result<Option<Vec<Row>>> {
    use kube_util::FluxKind as K;
    let rows = match kind {
        K::GitRepository => rows_of::<GitRepository>(client, g, kind, name, skip_missing).await?,
        K::OCIRepository => rows_of::<OCIRepository>(client, g, kind, name, skip_missing).await?,
        K::Bucket => rows_of::<Bucket>(client, g, kind, name, skip_missing).await?,
        K::HelmRepository => rows_of::<HelmRepository>(client, g, kind, name, skip_missing).await?,
        K::HelmChart => rows_of::<HelmChart>(client, g, kind, name, skip_missing).await?,
        K::Kustomization => rows_of::<Kustomization>(client, g, kind, name, skip_missing).await?,
        K::HelmRelease => rows_of::<HelmRelease>(client, g, kind, name, skip_missing).await?,
    };
    Ok(rows.map(|mut rows| {
        rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        rows
    }))
}

/// Runs `sluice get`.
pub async fn run(g: &GlobalArgs, args: GetArgs) -> Result<Outcome> {
    use crate::notification::{Kind, run_get};
    match &args.what {
        GetWhat::Alerts(n) => return run_get(g, Kind::Alert, n.name.as_deref(), args.output).await,
        GetWhat::AlertProviders(n) => {
            return run_get(g, Kind::Provider, n.name.as_deref(), args.output).await;
        }
        GetWhat::Receivers(n) => {
            return run_get(g, Kind::Receiver, n.name.as_deref(), args.output).await;
        }
        _ => {}
    }
    let (kinds, name): (Vec<kube_util::FluxKind>, Option<String>) = match &args.what {
        GetWhat::Sources(what) => {
            let (kinds, name) = what.kinds();
            (kinds, name.map(str::to_owned))
        }
        GetWhat::Kustomizations(n) => (vec![kube_util::FluxKind::Kustomization], n.name.clone()),
        GetWhat::Helmreleases(n) => (vec![kube_util::FluxKind::HelmRelease], n.name.clone()),
        GetWhat::Alerts(_) | GetWhat::AlertProviders(_) | GetWhat::Receivers(_) => {
            unreachable!("served above")
        }
        GetWhat::All => {
            let mut kinds = kube_util::FluxKind::SOURCES.to_vec();
            kinds.push(kube_util::FluxKind::Kustomization);
            kinds.push(kube_util::FluxKind::HelmRelease);
            (kinds, None)
        }
    };
    if g.all_namespaces && name.is_some() {
        return Err(
            UserError::new("a NAME cannot be combined with --all-namespaces")
                .hint("pass -n NAMESPACE instead")
                .into(),
        );
    }
    let client = kube_util::client(g).await?;
    // Several kinds: each table is prefixed by its kind, and a kind the
    // cluster does not serve is left out (as flux does).
    let all = kinds.len() > 1;
    let color = Color::stdout();
    let mut every = Vec::new();
    let mut printed_any = false;
    let mut served = Vec::new();
    for kind in &kinds {
        let Some(rows) = list_rows_of(&client, g, *kind, name.as_deref(), all).await? else {
            continue;
        };
        served.push(*kind);
        if args.output == OutputFormat::Table {
            if rows.is_empty() {
                continue;
            }
            if printed_any {
                println!();
            }
            print!("{}", table(&rows, g.all_namespaces, all).render(color));
            printed_any = true;
        }
        every.extend(rows);
    }
    match args.output {
        OutputFormat::Table => {
            if !printed_any && args.watch {
                print!("{}", table(&[], g.all_namespaces, all).render(color));
            } else if !printed_any {
                let what = match kinds.as_slice() {
                    [kind] => kind.kind(),
                    _ if matches!(args.what, GetWhat::Sources(_)) => "source",
                    _ => "Flux",
                };
                let scope = if g.all_namespaces {
                    "any namespace".to_string()
                } else {
                    format!("{} namespace", g.namespace)
                };
                eprintln!("no {what} objects found in {scope}");
            }
        }
        format => print_data(format, &every)?,
    }
    if args.watch {
        watch(
            &client,
            g,
            &served,
            name.as_deref(),
            args.output,
            all,
            every,
        )
        .await?;
    }
    Ok(Outcome::Ok)
}

async fn watch(
    client: &Client,
    g: &GlobalArgs,
    kinds: &[kube_util::FluxKind],
    name: Option<&str>,
    format: OutputFormat,
    all: bool,
    seen: Vec<Row>,
) -> Result<()> {
    let mut config = watcher::Config::default();
    if let Some(n) = name {
        config = config.fields(&format!("metadata.name={n}"));
    }
    fn rows<K: Listed>(
        client: &Client,
        g: &GlobalArgs,
        config: &watcher::Config,
    ) -> BoxStream<'static, Result<Row, watcher::Error>> {
        watcher(api::<K>(client, g), config.clone())
            .applied_objects()
            .map_ok(|o| o.row())
            .boxed()
    }
    let mut streams = Vec::new();
    for kind in kinds {
        use kube_util::FluxKind as K;
        let s = match kind {
            K::GitRepository => rows::<GitRepository>(client, g, &config),
            K::OCIRepository => rows::<OCIRepository>(client, g, &config),
            K::Bucket => rows::<Bucket>(client, g, &config),
            K::HelmRepository => rows::<HelmRepository>(client, g, &config),
            K::HelmChart => rows::<HelmChart>(client, g, &config),
            K::Kustomization => rows::<Kustomization>(client, g, &config),
            K::HelmRelease => rows::<HelmRelease>(client, g, &config),
        };
        streams.push(s);
    }
    let mut merged = futures::stream::select_all(streams);
    let mut last: std::collections::HashMap<(String, String, String), Row> = seen
        .into_iter()
        .map(|r| ((r.kind.clone(), r.namespace.clone(), r.name.clone()), r))
        .collect();
    let color = Color::stdout();
    while let Some(row) = merged.next().await {
        let row = row.map_err(|e| UserError::new(format!("watching: {e}")))?;
        let key = (row.kind.clone(), row.namespace.clone(), row.name.clone());
        if last.get(&key) == Some(&row) {
            continue;
        }
        last.insert(key, row.clone());
        match format {
            OutputFormat::Table => {
                let text = table(std::slice::from_ref(&row), g.all_namespaces, all).render(color);
                // Only the row, not the header.
                if let Some(line) = text.lines().nth(1) {
                    println!("{line}");
                }
            }
            OutputFormat::Json => println!("{}", serde_json::to_string(&row)?),
            OutputFormat::Yaml => print!("---\n{}", serde_norway::to_string(&row)?),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn helm_repository(spec: serde_json::Value) -> HelmRepository {
        serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "charts", "namespace": "flux-system", "generation": 1},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn an_oci_helm_repository_reads_ready_as_flux_prints_it() {
        let oci = helm_repository(json!({"url": "oci://ghcr.io/charts", "type": "oci"}));
        let row = oci.row();
        assert_eq!(
            (row.kind.as_str(), row.ready.as_str(), row.message.as_str()),
            ("HelmRepository", "True", "Helm repository is Ready")
        );
        let http = helm_repository(json!({"url": "https://charts.example"}));
        let row = http.row();
        assert_eq!(
            (row.ready.as_str(), row.message.as_str()),
            ("False", "waiting to be reconciled")
        );
    }

    #[test]
    fn a_source_row_shows_the_artifact_revision() {
        let oci: OCIRepository = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "flux-system", "generation": 2},
            "spec": {"url": "oci://registry/app", "interval": "1m", "suspend": true},
            "status": {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                "message": "stored artifact", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "artifact": {"path": "p", "url": "u", "revision": "v1@sha256:abc", "digest": "sha256:abc",
                             "lastUpdateTime": "2026-01-01T00:00:00Z"},
            },
        }))
        .unwrap();
        let row = oci.row();
        assert_eq!(row.kind, "OCIRepository");
        assert_eq!(row.revision, "v1@sha256:abc");
        assert!(row.suspended);
        assert_eq!(row.ready, "True");
    }

    #[test]
    fn a_bucket_row_shows_the_artifact_revision() {
        let bucket: Bucket = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "Bucket",
            "metadata": {"name": "manifests", "namespace": "flux-system", "generation": 3},
            "spec": {"bucketName": "manifests", "endpoint": "minio.lan:9000", "interval": "5m"},
            "status": {
                "observedGeneration": 3,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                "message": "stored artifact: revision 'sha256:c3ab'",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "artifact": {"path": "p", "url": "u", "revision": "sha256:c3ab", "digest": "sha256:c3ab",
                             "lastUpdateTime": "2026-01-01T00:00:00Z"},
            },
        }))
        .unwrap();
        let row = bucket.row();
        assert_eq!(row.kind, "Bucket");
        assert_eq!(row.revision, "sha256:c3ab");
        assert!(!row.suspended);
        assert_eq!(
            (row.ready.as_str(), row.message.as_str()),
            ("True", "stored artifact: revision 'sha256:c3ab'")
        );
        let arg = SourceKindArg::Bucket(NameArg {
            name: Some("manifests".into()),
        });
        let (kinds, name) = arg.kinds();
        assert_eq!(
            (kinds, name),
            (vec![kube_util::FluxKind::Bucket], Some("manifests"))
        );
    }

    #[test]
    fn sources_all_lists_every_source_kind_in_flux_order() {
        let (kinds, name) = SourceKindArg::All.kinds();
        assert_eq!(name, None);
        let names: Vec<&str> = kinds.iter().map(|k| k.kind()).collect();
        assert_eq!(
            names,
            [
                "OCIRepository",
                "Bucket",
                "GitRepository",
                "HelmRepository",
                "HelmChart"
            ]
        );
    }
}
