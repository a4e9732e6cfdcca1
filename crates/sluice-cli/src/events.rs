//! `sluice events [--for Kind/name] [-w]`: the events of Flux objects (or of
//! one object), oldest first, as `flux events` prints them.

use anyhow::Result;
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::Serialize;

use crate::kube_util::{self, seconds_since};
use crate::output::{Color, OutputFormat, Table, age, print_data};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only the events of this object, as Kind/name (for example
    /// `Kustomization/apps` or `ks/apps`).
    #[arg(long = "for", value_name = "KIND/NAME")]
    pub for_object: Option<String>,

    /// After listing, watch for new events.
    #[arg(short = 'w', long)]
    pub watch: bool,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The kinds `sluice events` shows without `--for` (with the notification kinds: what was
/// sent where, and what could not be).
const FLUX_KINDS: [&str; 10] = [
    "GitRepository",
    "Kustomization",
    "OCIRepository",
    "Bucket",
    "HelmRepository",
    "HelmChart",
    "HelmRelease",
    "Alert",
    "Provider",
    "Receiver",
];

/// Expands the short names people type (`ks`, `gitrepo`, `deploy`, …).
pub fn canonical_kind(kind: &str) -> String {
    match kind.to_ascii_lowercase().as_str() {
        "ks" | "kustomization" | "kustomizations" => "Kustomization".into(),
        "gitrepo" | "gitrepository" | "gitrepositories" | "git" => "GitRepository".into(),
        "ocirepo" | "ocirepository" | "ocirepositories" | "oci" => "OCIRepository".into(),
        "bucket" | "buckets" => "Bucket".into(),
        "helmrepo" | "helmrepository" | "helmrepositories" | "helm" => "HelmRepository".into(),
        "hc" | "helmchart" | "helmcharts" | "chart" => "HelmChart".into(),
        "hr" | "helmrelease" | "helmreleases" => "HelmRelease".into(),
        "alert" | "alerts" => "Alert".into(),
        "provider" | "providers" | "alert-provider" | "alert-providers" => "Provider".into(),
        "receiver" | "receivers" => "Receiver".into(),
        "deploy" | "deployment" | "deployments" => "Deployment".into(),
        "sts" | "statefulset" | "statefulsets" => "StatefulSet".into(),
        "ds" | "daemonset" | "daemonsets" => "DaemonSet".into(),
        "po" | "pod" | "pods" => "Pod".into(),
        "pvc" | "persistentvolumeclaim" | "persistentvolumeclaims" => {
            "PersistentVolumeClaim".into()
        }
        "svc" | "service" | "services" => "Service".into(),
        "cert" | "certs" | "certificate" | "certificates" => "Certificate".into(),
        _ => {
            let mut c = kind.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// One event row.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Namespace.
    pub namespace: String,
    /// Last seen, RFC 3339.
    pub last_seen: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// `Kind/name`.
    pub object: String,
    /// Message.
    pub message: String,
}

pub(crate) fn last_seen(e: &Event) -> String {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
        .unwrap_or_default()
}

fn row(e: &Event) -> EventRow {
    EventRow {
        namespace: e.metadata.namespace.clone().unwrap_or_default(),
        last_seen: last_seen(e),
        type_: e.type_.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object.kind.clone().unwrap_or_default(),
            e.involved_object.name.clone().unwrap_or_default()
        ),
        message: e.message.clone().unwrap_or_default().trim().to_string(),
    }
}

fn matches(e: &Event, filter: &Option<(String, String)>) -> bool {
    let kind = e.involved_object.kind.as_deref().unwrap_or_default();
    match filter {
        Some((k, n)) => kind == k && e.involved_object.name.as_deref() == Some(n.as_str()),
        None => FLUX_KINDS.contains(&kind),
    }
}

/// Parses `Kind/name`.
pub fn parse_kind_name(s: &str) -> Result<(String, String)> {
    match s.split_once('/') {
        Some((k, n)) if !k.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok((canonical_kind(k), n.to_string()))
        }
        _ => Err(
            UserError::new(format!("invalid object {s:?}: expected KIND/NAME"))
                .hint("for example --for Kustomization/apps")
                .into(),
        ),
    }
}

fn table(rows: &[EventRow], all_namespaces: bool, header: bool) -> String {
    let mut cols = vec![];
    if all_namespaces {
        cols.push("NAMESPACE");
    }
    cols.extend(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    let mut t = Table::new(&cols);
    for r in rows {
        let mut cells = vec![];
        if all_namespaces {
            cells.push(r.namespace.clone());
        }
        cells.extend([
            seconds_since(&r.last_seen).map(age).unwrap_or_default(),
            r.type_.clone(),
            r.reason.clone(),
            r.object.clone(),
            r.message.replace('\n', " "),
        ]);
        t.row(cells);
    }
    let text = t.render(Color::stdout());
    if header {
        text
    } else {
        text.lines().skip(1).map(|l| format!("{l}\n")).collect()
    }
}

fn api(client: &Client, g: &GlobalArgs) -> Api<Event> {
    if g.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &g.namespace)
    }
}

/// Lists the matching events, oldest first.
pub async fn list(
    client: &Client,
    g: &GlobalArgs,
    filter: &Option<(String, String)>,
) -> Result<Vec<EventRow>> {
    let events = api(client, g)
        .list(&ListParams::default())
        .await
        .map_err(|e| kube_util::user_kube_error(e, "listing events"))?;
    let mut rows: Vec<EventRow> = events
        .items
        .iter()
        .filter(|e| matches(e, filter))
        .map(row)
        .collect();
    rows.sort_by(|a, b| a.last_seen.cmp(&b.last_seen));
    Ok(rows)
}

/// Runs `sluice events`.
pub async fn run(g: &GlobalArgs, args: EventsArgs) -> Result<Outcome> {
    let filter = args
        .for_object
        .as_deref()
        .map(parse_kind_name)
        .transpose()?;
    let client = kube_util::client(g).await?;
    let rows = list(&client, g, &filter).await?;
    match args.output {
        OutputFormat::Table => {
            if rows.is_empty() && !args.watch {
                eprintln!("no events found");
            } else {
                print!("{}", table(&rows, g.all_namespaces, true));
            }
        }
        format => print_data(format, &rows)?,
    }
    if args.watch {
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut stream = watcher(api(&client, g), watcher::Config::default())
            .applied_objects()
            .boxed();
        let known: std::collections::HashSet<(String, String, String)> = rows
            .iter()
            .map(|r| (r.object.clone(), r.message.clone(), r.last_seen.clone()))
            .collect();
        while let Some(e) = stream
            .try_next()
            .await
            .map_err(|e| UserError::new(format!("watching events: {e}")))?
        {
            if !matches(&e, &filter) {
                continue;
            }
            let r = row(&e);
            let key = format!("{}{}{}", r.object, r.message, r.last_seen);
            if known.contains(&(r.object.clone(), r.message.clone(), r.last_seen.clone()))
                || !seen.insert(key)
            {
                continue;
            }
            match args.output {
                OutputFormat::Table => print!("{}", table(&[r], g.all_namespaces, false)),
                OutputFormat::Json => println!("{}", serde_json::to_string(&r)?),
                OutputFormat::Yaml => print!("---\n{}", serde_norway::to_string(&r)?),
            }
        }
    }
    Ok(Outcome::Ok)
}
