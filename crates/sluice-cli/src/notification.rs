//! The notification verbs, as `flux` has them: `sluice create alert|alert-provider|receiver`,
//! `sluice get alerts|alert-providers|receivers`, `sluice suspend|resume
//! alert|alert-provider|receiver`.
//!
//! Flux's `v1beta3` Alert and Provider have no status, so their tables show the last delivery
//! instead, read from the events sluice records on them (`NotificationSent`,
//! `NotificationDispatchFailed`, `InvalidConfig`, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use k8s_openapi::api::core::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};
use sluice_api::meta::{self, FluxObject};
use sluice_api::notification::{
    ALERT_KIND, PROVIDER_KIND, ProviderType, RECEIVER_KIND, ReceiverResourceKind, ReceiverType,
};
use sluice_api::{Alert, Provider, Receiver};

use crate::create::metadata;
use crate::kube_util::{self, not_found_or};
use crate::output::{Color, Log, OutputFormat, Table, age, print_data};
use crate::{GlobalArgs, Outcome, UserError};

/// The three kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Provider,
    Receiver,
}

impl Kind {
    fn kind(self) -> &'static str {
        match self {
            Kind::Alert => ALERT_KIND,
            Kind::Provider => PROVIDER_KIND,
            Kind::Receiver => RECEIVER_KIND,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Provider => "alert-provider",
            Kind::Receiver => "receiver",
        }
    }

    fn list_command(self) -> &'static str {
        match self {
            Kind::Alert => "sluice get alerts -A",
            Kind::Provider => "sluice get alert-providers -A",
            Kind::Receiver => "sluice get receivers -A",
        }
    }
}

/// `sluice create alert NAME`.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// The Alert's name.
    pub name: String,
    /// The Provider to send to.
    #[arg(long = "provider-ref", value_name = "NAME")]
    pub provider_ref: String,
    /// Objects whose events are sent: KIND/NAME or KIND/NAMESPACE/NAME, NAME may be `*`
    /// (repeatable, or comma-separated).
    #[arg(
        long = "event-source",
        value_name = "KIND/NAME",
        value_delimiter = ',',
        required = true
    )]
    pub event_sources: Vec<String>,
    /// `info` (every event) or `error` (errors only).
    #[arg(long = "event-severity", value_name = "SEVERITY")]
    pub event_severity: Option<String>,
    /// Only messages matching one of these regular expressions (repeatable).
    #[arg(long = "inclusion-list", value_name = "REGEX")]
    pub inclusion_list: Vec<String>,
    /// Never messages matching one of these regular expressions (repeatable).
    #[arg(long = "exclusion-list", value_name = "REGEX")]
    pub exclusion_list: Vec<String>,
}

/// `sluice create alert-provider NAME`.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// The Provider's name.
    pub name: String,
    /// slack, discord, msteams, googlechat, telegram, matrix, lark, alertmanager, rocket,
    /// webex, zulip, zoom, grafana, opsgenie, pagerduty, incident.io, datadog, generic,
    /// generic-hmac, github, githubdispatch, gitea, gitlab, bitbucket, bitbucketserver,
    /// azuredevops, githubpullrequestcomment, giteapullrequestcomment, gitlabmergerequestcomment,
    /// nats, dingtalk, wecom (and Flux's other types).
    #[arg(long = "type", value_name = "TYPE")]
    pub type_: String,
    /// The channel (Slack, Telegram chat, Matrix room).
    #[arg(long)]
    pub channel: Option<String>,
    /// The name to post as.
    #[arg(long)]
    pub username: Option<String>,
    /// The webhook URL or repository address (or in the Secret, as `address`).
    #[arg(long)]
    pub address: Option<String>,
    /// The Secret with `address`, `token`, `username`/`password` or `headers`.
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: Option<String>,
}

/// `sluice create receiver NAME`.
#[derive(Debug, Args)]
pub struct ReceiverArgs {
    /// The Receiver's name.
    pub name: String,
    /// github (also Gitea and Forgejo), gitlab, bitbucket, harbor, dockerhub, quay, nexus,
    /// acr, generic, generic-hmac.
    #[arg(long = "type", value_name = "TYPE")]
    pub type_: String,
    /// An event the Receiver takes, e.g. `push` (repeatable, or comma-separated).
    #[arg(long = "event", value_name = "EVENT", value_delimiter = ',')]
    pub events: Vec<String>,
    /// An object to reconcile: KIND/NAME or KIND/NAMESPACE/NAME (repeatable, or
    /// comma-separated).
    #[arg(
        long = "resource",
        value_name = "KIND/NAME",
        value_delimiter = ',',
        required = true
    )]
    pub resources: Vec<String>,
    /// The Secret with the `token`.
    #[arg(long = "secret-ref", value_name = "NAME")]
    pub secret_ref: String,
    /// How long to wait for the Receiver to be ready.
    #[arg(long, default_value = "1m", value_parser = crate::reconcile::parse_timeout)]
    pub timeout: Duration,
}

/// A KIND/NAME or KIND/NAMESPACE/NAME reference of `flag`.
fn reference(flag: &str, s: &str) -> Result<Value> {
    let parts: Vec<&str> = s.split('/').collect();
    let (kind, ns, name) = match parts[..] {
        [k, n] => (k, None, n),
        [k, ns, n] => (k, Some(ns), n),
        _ => {
            return Err(UserError::new(format!(
                "{flag} {s:?}: expected KIND/NAME or KIND/NAMESPACE/NAME"
            ))
            .hint(format!("for example {flag}=Kustomization/*"))
            .into());
        }
    };
    let canonical = crate::events::canonical_kind(kind);
    let known = ReceiverResourceKind::from(canonical.as_str());
    if !known.is_known() || name.is_empty() {
        return Err(UserError::new(format!(
            "{flag} {s:?}: {kind:?} is not a kind Flux notifies about ({})",
            ReceiverResourceKind::VALUES.join(", ")
        ))
        .into());
    }
    let mut r = json!({"kind": known.as_str(), "name": name});
    if let Some(ns) = ns.filter(|n| !n.is_empty()) {
        r["namespace"] = ns.into();
    }
    Ok(r)
}

/// The Alert of `sluice create alert` (pure).
pub fn alert(ns: &str, a: &AlertArgs, labels: &BTreeMap<String, String>) -> Result<Value> {
    let group = sluice_api::notification::GROUP;
    let sources = a
        .event_sources
        .iter()
        .map(|s| reference("--event-source", s))
        .collect::<Result<Vec<_>>>()?;
    let mut spec = json!({"providerRef": {"name": a.provider_ref}, "eventSources": sources});
    if let Some(sev) = &a.event_severity {
        if sev != "info" && sev != "error" {
            return Err(UserError::new(format!(
                "--event-severity {sev:?}: expected info or error"
            ))
            .into());
        }
        spec["eventSeverity"] = sev.as_str().into();
    }
    for (field, list) in [
        ("inclusionList", &a.inclusion_list),
        ("exclusionList", &a.exclusion_list),
    ] {
        for re in list {
            regex::Regex::new(re).map_err(|e| {
                UserError::new(format!("{field} {re:?} is not a regular expression: {e}"))
            })?;
        }
        if !list.is_empty() {
            spec[field] = json!(list);
        }
    }
    Ok(
        json!({"apiVersion": format!("{group}/v1beta3"), "kind": ALERT_KIND,
              "metadata": metadata(ns, &a.name, labels), "spec": spec}),
    )
}

/// The Provider of `sluice create alert-provider` (pure).
pub fn provider(ns: &str, p: &ProviderArgs, labels: &BTreeMap<String, String>) -> Result<Value> {
    let group = sluice_api::notification::GROUP;
    let t = ProviderType::from(p.type_.as_str());
    if !t.is_known() {
        return Err(UserError::new(format!(
            "--type {:?} is not a Provider type ({})",
            p.type_,
            ProviderType::VALUES.join(", ")
        ))
        .into());
    }
    let mut spec = json!({"type": t.as_str()});
    for (field, value) in [
        ("channel", &p.channel),
        ("username", &p.username),
        ("address", &p.address),
    ] {
        if let Some(v) = value {
            spec[field] = v.as_str().into();
        }
    }
    if let Some(s) = &p.secret_ref {
        spec["secretRef"] = json!({"name": s});
    }
    Ok(
        json!({"apiVersion": format!("{group}/v1beta3"), "kind": PROVIDER_KIND,
              "metadata": metadata(ns, &p.name, labels), "spec": spec}),
    )
}

/// The Receiver of `sluice create receiver` (pure).
pub fn receiver(ns: &str, r: &ReceiverArgs, labels: &BTreeMap<String, String>) -> Result<Value> {
    let group = sluice_api::notification::GROUP;
    let t = ReceiverType::from(r.type_.as_str());
    if !t.is_known() {
        return Err(UserError::new(format!(
            "--type {:?} is not a Receiver type ({})",
            r.type_,
            ReceiverType::VALUES.join(", ")
        ))
        .into());
    }
    let resources = r
        .resources
        .iter()
        .map(|s| reference("--resource", s))
        .collect::<Result<Vec<_>>>()?;
    let mut spec =
        json!({"type": t.as_str(), "resources": resources, "secretRef": {"name": r.secret_ref}});
    if !r.events.is_empty() {
        spec["events"] = json!(r.events);
    }
    Ok(
        json!({"apiVersion": format!("{group}/v1"), "kind": RECEIVER_KIND,
              "metadata": metadata(ns, &r.name, labels), "spec": spec}),
    )
}

/// After `sluice create receiver`: waits for the Receiver and prints its webhook path.
pub async fn wait_and_print(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
    log: &Log,
) -> Result<()> {
    log.waiting("waiting for Receiver reconciliation");
    let receiver = wait_receiver(client, ns, name, timeout).await?;
    let path = receiver
        .status
        .as_ref()
        .and_then(|s| s.webhook_path.clone())
        .unwrap_or_default();
    log.success(&format!("Receiver {name} is ready"));
    log.success(&format!("generated webhook URL {path}"));
    Ok(())
}

/// Waits until the Receiver is Ready at its generation; its Ready message when it is not.
async fn wait_receiver(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Receiver> {
    let api: Api<Receiver> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let r = api
            .get(name)
            .await
            .map_err(|e| not_found_or(e, RECEIVER_KIND, ns, name, Kind::Receiver.list_command()))?;
        let current =
            r.metadata.generation.is_some() && r.observed_generation() == r.metadata.generation;
        if current && r.is_ready() {
            return Ok(r);
        }
        if std::time::Instant::now() > deadline {
            let why = meta::find_condition(r.conditions(), meta::READY_CONDITION)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| {
                    "no controller has reconciled it (is sluice running with --notification?)"
                        .into()
                });
            return Err(UserError::new(format!("Receiver {ns}/{name} is not ready: {why}")).into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One row of `sluice get alerts|alert-providers|receivers`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    /// The Alert's Provider, the Provider's type, the Receiver's type.
    pub detail: String,
    pub suspended: bool,
    /// Receivers: Ready; Alerts and Providers: the last delivery's outcome (`True`: sent,
    /// `False`: failed, `Unknown`: none recorded).
    pub ready: String,
    pub message: String,
}

/// The latest of `events` about `kind`/`name`: its reason, message and when.
fn last_event<'a>(events: &'a [Event], kind: &str, ns: &str, name: &str) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
                && e.involved_object.namespace.as_deref() == Some(ns)
        })
        .max_by_key(|e| crate::events::last_seen(e))
}

fn delivery(events: &[Event], kind: &str, ns: &str, name: &str) -> (String, String) {
    match last_event(events, kind, ns, name) {
        None => ("Unknown".into(), "no notification recorded".into()),
        Some(e) => {
            let ok = e.type_.as_deref() != Some("Warning");
            let when = kube_util::seconds_since(&crate::events::last_seen(e))
                .map(|s| format!(" ({} ago)", age(s)))
                .unwrap_or_default();
            (
                if ok { "True" } else { "False" }.into(),
                format!("{}{when}", e.message.clone().unwrap_or_default().trim()),
            )
        }
    }
}

/// Runs `sluice get alerts|alert-providers|receivers`.
pub async fn run_get(
    g: &GlobalArgs,
    kind: Kind,
    name: Option<&str>,
    output: OutputFormat,
) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let lp = ListParams::default();
    let list_err =
        |e: kube::Error| kube_util::user_kube_error(e, &format!("listing {}s", kind.kind()));
    macro_rules! objects {
        ($t:ty) => {{
            let api: Api<$t> = if g.all_namespaces {
                Api::all(client.clone())
            } else {
                Api::namespaced(client.clone(), &g.namespace)
            };
            match name {
                Some(n) => vec![api.get(n).await.map_err(|e| {
                    not_found_or(e, kind.kind(), &g.namespace, n, kind.list_command())
                })?],
                None => api.list(&lp).await.map_err(list_err)?.items,
            }
        }};
    }
    let events: Vec<Event> = if kind == Kind::Receiver {
        vec![]
    } else {
        let api: Api<Event> = if g.all_namespaces {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), &g.namespace)
        };
        api.list(&ListParams::default().fields(&format!("involvedObject.kind={}", kind.kind())))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    };
    let mut rows: Vec<Row> = match kind {
        Kind::Alert => objects!(Alert)
            .iter()
            .map(|a| {
                let ns = a.namespace().unwrap_or_default();
                let (ready, message) = delivery(&events, ALERT_KIND, &ns, &a.name_any());
                Row {
                    namespace: ns,
                    name: a.name_any(),
                    detail: a.spec.provider_ref.name.clone(),
                    suspended: a.is_suspended(),
                    ready,
                    message,
                }
            })
            .collect(),
        Kind::Provider => objects!(Provider)
            .iter()
            .map(|p| {
                let ns = p.namespace().unwrap_or_default();
                let (ready, message) = delivery(&events, PROVIDER_KIND, &ns, &p.name_any());
                Row {
                    namespace: ns,
                    name: p.name_any(),
                    detail: p.spec.type_.as_str().to_string(),
                    suspended: p.is_suspended(),
                    ready,
                    message,
                }
            })
            .collect(),
        Kind::Receiver => objects!(Receiver)
            .iter()
            .map(|r| {
                let ready = meta::find_condition(r.conditions(), meta::READY_CONDITION);
                Row {
                    namespace: r.namespace().unwrap_or_default(),
                    name: r.name_any(),
                    detail: r.spec.type_.as_str().to_string(),
                    suspended: r.is_suspended(),
                    ready: ready.map_or("Unknown".into(), |c| c.status.clone()),
                    message: ready.map_or("waiting to be reconciled".into(), |c| c.message.clone()),
                }
            })
            .collect(),
    };
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if output != OutputFormat::Table {
        print_data(output, &rows)?;
        return Ok(Outcome::Ok);
    }
    if rows.is_empty() {
        let scope = if g.all_namespaces {
            "any namespace".to_string()
        } else {
            format!("{} namespace", g.namespace)
        };
        eprintln!("no {} objects found in {scope}", kind.kind());
        return Ok(Outcome::Ok);
    }
    let detail = match kind {
        Kind::Alert => "PROVIDER",
        Kind::Provider | Kind::Receiver => "TYPE",
    };
    let (ready, message) = match kind {
        Kind::Receiver => ("READY", "MESSAGE"),
        _ => ("DELIVERED", "LAST NOTIFICATION"),
    };
    let mut header = vec![];
    if g.all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(["NAME", detail, "SUSPENDED", ready, message]);
    let mut t = Table::new(&header);
    t.status_column = Some(if g.all_namespaces { 4 } else { 3 });
    for r in &rows {
        let mut cells = vec![];
        if g.all_namespaces {
            cells.push(r.namespace.clone());
        }
        cells.extend([
            r.name.clone(),
            r.detail.clone(),
            if r.suspended { "True" } else { "False" }.to_string(),
            r.ready.clone(),
            r.message.replace('\n', " "),
        ]);
        t.row(cells);
    }
    print!("{}", t.render(Color::stdout()));
    Ok(Outcome::Ok)
}

/// Runs `sluice suspend|resume alert|alert-provider|receiver NAME`.
pub async fn run_suspend(g: &GlobalArgs, kind: Kind, name: &str, suspend: bool) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let log = Log::default();
    let (verb, done) = if suspend {
        ("suspending", "suspended")
    } else {
        ("resuming", "resumed")
    };
    log.action(&format!("{verb} {} {name} in {ns} namespace", kind.noun()));
    let patch = json!({"spec": {"suspend": if suspend { Value::Bool(true) } else { Value::Null }}});
    let pp = PatchParams::default();
    let result = match kind {
        Kind::Alert => Api::<Alert>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Merge(&patch))
            .await
            .map(drop),
        Kind::Provider => Api::<Provider>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Merge(&patch))
            .await
            .map(drop),
        Kind::Receiver => Api::<Receiver>::namespaced(client.clone(), ns)
            .patch(name, &pp, &Patch::Merge(&patch))
            .await
            .map(drop),
    };
    result.map_err(|e| not_found_or(e, kind.kind(), ns, name, kind.list_command()))?;
    log.success(&format!("{} {done}", kind.noun()));
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        create: crate::create::CreateArgs,
    }

    fn create(args: &[&str]) -> Result<(Kind, Value)> {
        let cli = Cli::try_parse_from(std::iter::once("create").chain(args.iter().copied()))?;
        let obj = crate::create::objects("flux-system", &cli.create)?.remove(0);
        let kind = match obj["kind"].as_str() {
            Some(ALERT_KIND) => Kind::Alert,
            Some(PROVIDER_KIND) => Kind::Provider,
            _ => Kind::Receiver,
        };
        Ok((kind, obj))
    }

    #[test]
    fn objects_are_made_as_flux_create_makes_them() {
        let (kind, alert) = create(&[
            "alert",
            "on-call",
            "--provider-ref",
            "slack",
            "--event-severity",
            "error",
            "--event-source",
            "Kustomization/*,HelmRelease/apps/traefik",
            "--label",
            "team=ops",
        ])
        .unwrap();
        assert_eq!(kind, Kind::Alert);
        assert_eq!(
            alert,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
                "metadata": {"name": "on-call", "namespace": "flux-system", "labels": {"team": "ops"}},
                "spec": {"providerRef": {"name": "slack"},
                    "eventSources": [{"kind": "Kustomization", "name": "*"},
                                     {"kind": "HelmRelease", "name": "traefik", "namespace": "apps"}],
                    "eventSeverity": "error"}})
        );
        // The object is what the CRD admits.
        let _: Alert = serde_json::from_value(alert).unwrap();

        let (_, provider) = create(&[
            "alert-provider",
            "ding",
            "--type",
            "dingtalk",
            "--secret-ref",
            "ding-secret",
            "--address",
            "https://oapi.dingtalk.com/robot/send?access_token=x",
        ])
        .unwrap();
        assert_eq!(provider["spec"]["type"], "dingtalk");
        assert_eq!(provider["spec"]["secretRef"]["name"], "ding-secret");
        let _: Provider = serde_json::from_value(provider).unwrap();

        let (_, receiver) = create(&[
            "receiver",
            "gitea",
            "--type",
            "github",
            "--event",
            "push",
            "--resource",
            "GitRepository/flux-system",
            "--secret-ref",
            "webhook-token",
        ])
        .unwrap();
        assert_eq!(
            receiver["spec"],
            json!({"type": "github", "resources": [{"kind": "GitRepository", "name": "flux-system"}],
                   "secretRef": {"name": "webhook-token"}, "events": ["push"]})
        );
        let _: Receiver = serde_json::from_value(receiver).unwrap();
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let e = create(&[
            "alert",
            "a",
            "--provider-ref",
            "p",
            "--event-source",
            "Deployment/web",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--event-source \"Deployment/web\""), "{e}");
        let e = create(&["alert-provider", "p", "--type", "carrier-pigeon"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--type \"carrier-pigeon\" is not a Provider type"),
            "{e}"
        );
        let e = create(&[
            "alert",
            "a",
            "--provider-ref",
            "p",
            "--event-source",
            "Kustomization/*",
            "--exclusion-list",
            "([",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("exclusionList \"([\" is not a regular expression"),
            "{e}"
        );
        let e = create(&[
            "alert",
            "a",
            "--provider-ref",
            "p",
            "--event-source",
            "ks/a",
            "--label",
            "x",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("--label \"x\": expected KEY=VALUE"), "{e}");
    }
}
