//! `sluice stats`: per kind, how many objects there are, how many are failing (Ready=False)
//! and suspended, and the size of the artifacts the sources store, as `flux stats` prints it.
//! `sluice envsubst`: Flux's substitution dialect on standard input, for CI.

use std::io::{Read, Write};

use anyhow::Result;
use clap::Args;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::kube_util;
use crate::output::{Color, OutputFormat, Table, print_data};
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// One line of `sluice stats`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsRow {
    /// The kind.
    pub reconcilers: String,
    /// Objects not suspended.
    pub running: usize,
    /// Objects with Ready=False.
    pub failing: usize,
    /// Suspended objects.
    pub suspended: usize,
    /// Bytes of the stored artifacts (sources only).
    pub storage: Option<u64>,
}

/// The kinds counted: (kind, apiVersion, plural, has artifacts).
const KINDS: &[(&str, &str, &str, bool)] = &[
    (
        "GitRepository",
        "source.toolkit.fluxcd.io/v1",
        "gitrepositories",
        true,
    ),
    (
        "OCIRepository",
        "source.toolkit.fluxcd.io/v1",
        "ocirepositories",
        true,
    ),
    (
        "HelmRepository",
        "source.toolkit.fluxcd.io/v1",
        "helmrepositories",
        true,
    ),
    (
        "HelmChart",
        "source.toolkit.fluxcd.io/v1",
        "helmcharts",
        true,
    ),
    ("Bucket", "source.toolkit.fluxcd.io/v1", "buckets", true),
    (
        "Kustomization",
        "kustomize.toolkit.fluxcd.io/v1",
        "kustomizations",
        false,
    ),
    (
        "HelmRelease",
        "helm.toolkit.fluxcd.io/v2",
        "helmreleases",
        false,
    ),
    (
        "Alert",
        "notification.toolkit.fluxcd.io/v1beta3",
        "alerts",
        false,
    ),
    (
        "Provider",
        "notification.toolkit.fluxcd.io/v1beta3",
        "providers",
        false,
    ),
    (
        "Receiver",
        "notification.toolkit.fluxcd.io/v1",
        "receivers",
        false,
    ),
];

/// The row of one kind's objects (pure).
pub fn count(kind: &str, artifacts: bool, items: &[Value]) -> StatsRow {
    let suspended = items
        .iter()
        .filter(|o| o["spec"]["suspend"] == Value::Bool(true))
        .count();
    let failing = items
        .iter()
        .filter(|o| {
            o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False")
            })
        })
        .count();
    let storage = artifacts.then(|| {
        items
            .iter()
            .filter_map(|o| o["status"]["artifact"]["size"].as_u64())
            .sum()
    });
    StatsRow {
        reconcilers: kind.to_string(),
        running: items.len() - suspended,
        failing,
        suspended,
        storage,
    }
}

/// Bytes the way `flux stats` shows them (`1.2 MiB`).
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Runs `sluice stats`.
pub async fn run(g: &GlobalArgs, args: StatsArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let mut rows = vec![];
    for (kind, api_version, plural, artifacts) in KINDS {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = if g.all_namespaces {
            Api::all_with(client.clone(), &ar)
        } else {
            Api::namespaced_with(client.clone(), &g.namespace, &ar)
        };
        let items = match api.list(&ListParams::default()).await {
            Ok(l) => l
                .items
                .into_iter()
                .map(|o| serde_json::to_value(o).unwrap_or_default())
                .collect::<Vec<_>>(),
            // A kind the cluster does not serve is left out.
            Err(e) if kube_util::api_missing(&e) => continue,
            Err(e) => return Err(kube_util::user_kube_error(e, &format!("listing {kind}s"))),
        };
        rows.push(count(kind, *artifacts, &items));
    }
    if args.output != OutputFormat::Table {
        print_data(args.output, &rows)?;
        return Ok(Outcome::Ok);
    }
    let mut t = Table::new(&["RECONCILERS", "RUNNING", "FAILING", "SUSPENDED", "STORAGE"]);
    for r in &rows {
        t.row(vec![
            r.reconcilers.clone(),
            r.running.to_string(),
            r.failing.to_string(),
            r.suspended.to_string(),
            r.storage.map_or("-".into(), human),
        ]);
    }
    print!("{}", t.render(Color::stdout()));
    Ok(Outcome::Ok)
}

/// `sluice envsubst`.
#[derive(Debug, Args)]
pub struct EnvsubstArgs {
    /// Fail on a variable that is not set and has no default (Flux's strict mode).
    #[arg(long)]
    pub strict: bool,
}

/// Runs `sluice envsubst`: standard input to standard output, `${VAR}` from the environment.
pub fn envsubst(args: &EnvsubstArgs) -> Result<Outcome> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| UserError::new(format!("reading standard input: {e}")))?;
    let lookup = sluice_envsubst::FnLookup(|name: &str| std::env::var(name).ok());
    let opts = sluice_envsubst::Options {
        strict: args.strict,
    };
    let out = sluice_envsubst::substitute(&input, &lookup, opts)
        .map_err(|e| UserError::new(format!("standard input: {e}")))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_running_failing_suspended_and_storage() {
        let items = [
            json!({"spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "artifact": {"size": 2048}}}),
            json!({"spec": {"suspend": true}, "status": {"conditions": [{"type": "Ready", "status": "False"}],
                   "artifact": {"size": 1024}}}),
            json!({"spec": {}}),
        ];
        assert_eq!(
            count("GitRepository", true, &items),
            StatsRow {
                reconcilers: "GitRepository".into(),
                running: 2,
                failing: 1,
                suspended: 1,
                storage: Some(3072),
            }
        );
        assert_eq!(count("Kustomization", false, &items).storage, None);
        assert_eq!(human(3072), "3.0 KiB");
        assert_eq!(human(12), "12 B");
    }
}

/// `sluice version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Only this binary's version, without asking the cluster.
    #[arg(long)]
    pub client: bool,
}

/// Runs `sluice version`: this binary, then (unless `--client`) the controller running in the
/// namespace, by its Deployment's image.
pub async fn version(g: &GlobalArgs, args: &VersionArgs) -> Result<Outcome> {
    println!("sluice: v{}", env!("CARGO_PKG_VERSION"));
    if args.client {
        return Ok(Outcome::Ok);
    }
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let name = crate::install::CONTROLLER_NAME;
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, ns);
    let deployment = api
        .get_opt(name)
        .await
        .map_err(|e| kube_util::user_kube_error(e, "getting the controller Deployment"))?
        .ok_or_else(|| {
            UserError::new(format!(
                "no sluice controller in {ns} (Deployment {ns}/{name})"
            ))
            .hint(format!(
                "install it with `sluice install -n {ns}`, or pass --client"
            ))
        })?;
    let image = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image)
        .unwrap_or_default();
    let tag = image.rsplit_once(':').map_or("unknown", |(_, t)| t);
    println!("controller: {tag} ({image}, {ns}/{name})");
    Ok(Outcome::Ok)
}
