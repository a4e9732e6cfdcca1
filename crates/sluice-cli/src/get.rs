//! `sluice get sources git | kustomizations | all [--watch]`: flux's tables
//! (NAME, REVISION, SUSPENDED, READY, MESSAGE).

use anyhow::Result;
use clap::{Args, Subcommand};
use futures::{StreamExt, TryStreamExt};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use sluice_api::meta::{CONDITION_FALSE, FluxObject};
use sluice_api::{GitRepository, Kustomization};

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
    /// Sources (GitRepository).
    #[command(subcommand)]
    Sources(SourceKindArg),
    /// Kustomizations.
    #[command(visible_aliases = ["kustomization", "ks"])]
    Kustomizations(NameArg),
    /// Every Flux object: sources, then Kustomizations.
    All,
}

/// A source kind.
#[derive(Debug, Subcommand)]
pub enum SourceKindArg {
    /// GitRepository sources.
    Git(NameArg),
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

/// The row of a GitRepository.
pub fn git_row(g: &GitRepository) -> Row {
    let (ready, message) = ready_and_message(g);
    Row {
        kind: "GitRepository".into(),
        namespace: g.namespace().unwrap_or_default(),
        name: g.name_any(),
        revision: g.artifact().map(|a| a.revision.clone()).unwrap_or_default(),
        suspended: g.is_suspended(),
        ready,
        message,
    }
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

/// Lists the rows of one kind (optionally one object).
pub async fn list_rows(
    client: &Client,
    g: &GlobalArgs,
    kind: kube_util::FluxKind,
    name: Option<&str>,
) -> Result<Vec<Row>> {
    let mut rows = match kind {
        kube_util::FluxKind::GitRepository => {
            let api: Api<GitRepository> = api(client, g);
            match name {
                Some(n) => vec![git_row(&api.get(n).await.map_err(|e| {
                    not_found_or(e, "GitRepository", &g.namespace, n, kind.list_command())
                })?)],
                None => api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| kube_util::user_kube_error(e, "listing GitRepositories"))?
                    .items
                    .iter()
                    .map(git_row)
                    .collect(),
            }
        }
        kube_util::FluxKind::Kustomization => {
            let api: Api<Kustomization> = api(client, g);
            match name {
                Some(n) => vec![ks_row(&api.get(n).await.map_err(|e| {
                    not_found_or(e, "Kustomization", &g.namespace, n, kind.list_command())
                })?)],
                None => api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| kube_util::user_kube_error(e, "listing Kustomizations"))?
                    .items
                    .iter()
                    .map(ks_row)
                    .collect(),
            }
        }
    };
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(rows)
}

/// Runs `sluice get`.
pub async fn run(g: &GlobalArgs, args: GetArgs) -> Result<Outcome> {
    if g.all_namespaces
        && matches!(
            &args.what,
            GetWhat::Kustomizations(NameArg { name: Some(_) })
                | GetWhat::Sources(SourceKindArg::Git(NameArg { name: Some(_) }))
        )
    {
        return Err(
            UserError::new("a NAME cannot be combined with --all-namespaces")
                .hint("pass -n NAMESPACE instead")
                .into(),
        );
    }
    let client = kube_util::client(g).await?;
    let (kinds, name): (Vec<kube_util::FluxKind>, Option<String>) = match &args.what {
        GetWhat::Sources(SourceKindArg::Git(n)) => {
            (vec![kube_util::FluxKind::GitRepository], n.name.clone())
        }
        GetWhat::Kustomizations(n) => (vec![kube_util::FluxKind::Kustomization], n.name.clone()),
        GetWhat::All => (
            vec![
                kube_util::FluxKind::GitRepository,
                kube_util::FluxKind::Kustomization,
            ],
            None,
        ),
    };
    let all = matches!(args.what, GetWhat::All);
    let color = Color::stdout();
    let mut every = Vec::new();
    let mut printed_any = false;
    for kind in &kinds {
        let rows = list_rows(&client, g, *kind, name.as_deref()).await?;
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
                let what = match args.what {
                    GetWhat::Sources(_) => "GitRepository",
                    GetWhat::Kustomizations(_) => "Kustomization",
                    GetWhat::All => "Flux",
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
        watch(&client, g, &kinds, name.as_deref(), args.output, all, every).await?;
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
    let mut streams = Vec::new();
    for kind in kinds {
        let s = match kind {
            kube_util::FluxKind::GitRepository => {
                watcher(api::<GitRepository>(client, g), config.clone())
                    .applied_objects()
                    .map_ok(|o| git_row(&o))
                    .boxed()
            }
            kube_util::FluxKind::Kustomization => {
                watcher(api::<Kustomization>(client, g), config.clone())
                    .applied_objects()
                    .map_ok(|o| ks_row(&o))
                    .boxed()
            }
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
