//! `sluice tree kustomization NAME` and `sluice tree helmrelease NAME`: the
//! inventory as a tree, the Kustomizations and HelmReleases in it expanded
//! into what they applied (as `flux tree`).

use std::collections::HashSet;

use anyhow::Result;
use clap::{Args, Subcommand};
use kube::Api;
use serde::Serialize;
use sluice_api::meta::ObjectId;
use sluice_api::{HelmRelease, Kustomization};

use crate::kube_util::{self, FluxKind, not_found_or};
use crate::output::{OutputFormat, print_data};
use crate::{GlobalArgs, Outcome};

/// `sluice tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(subcommand)]
    pub what: TreeWhat,

    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, global = true, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// What to show.
#[derive(Debug, Subcommand)]
pub enum TreeWhat {
    /// A Kustomization's inventory.
    #[command(visible_alias = "ks")]
    Kustomization(TreeName),
    /// What a HelmRelease installed (its inventory).
    #[command(name = "helmrelease", visible_alias = "hr")]
    HelmRelease(TreeName),
}

/// The Kustomization or HelmRelease.
#[derive(Debug, Args)]
pub struct TreeName {
    /// Its name.
    pub name: String,
}

/// A node of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// `Kind/namespace/name` (or `Kind/name`).
    pub resource: String,
    /// Its children (for Kustomizations and HelmReleases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Node>,
}

fn label(id: &ObjectId) -> String {
    if id.namespace.is_empty() {
        format!("{}/{}", id.kind, id.name)
    } else {
        format!("{}/{}/{}", id.kind, id.namespace, id.name)
    }
}

/// A kind whose inventory the tree expands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    Kustomization,
    HelmRelease,
}

impl Owner {
    fn of(id: &ObjectId) -> Option<Owner> {
        match (id.group.as_str(), id.kind.as_str()) {
            (sluice_api::kustomization::GROUP, "Kustomization") => Some(Owner::Kustomization),
            (sluice_api::helm_release::GROUP, "HelmRelease") => Some(Owner::HelmRelease),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Owner::Kustomization => "Kustomization",
            Owner::HelmRelease => "HelmRelease",
        }
    }

    fn flux_kind(self) -> FluxKind {
        match self {
            Owner::Kustomization => FluxKind::Kustomization,
            Owner::HelmRelease => FluxKind::HelmRelease,
        }
    }
}

/// Builds the tree of a Kustomization or a HelmRelease.
pub async fn build(client: &kube::Client, owner: Owner, ns: &str, name: &str) -> Result<Node> {
    let mut seen = HashSet::new();
    expand(client, owner, ns, name, &mut seen, true).await
}

/// The inventory of `owner` `ns/name`; `None` when it does not exist (and is not the root).
async fn inventory(
    client: &kube::Client,
    owner: Owner,
    ns: &str,
    name: &str,
    root: bool,
) -> Result<Option<Vec<sluice_api::kustomization::ResourceRef>>> {
    let got = match owner {
        Owner::Kustomization => Api::<Kustomization>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map(|k| k.inventory().to_vec()),
        Owner::HelmRelease => Api::<HelmRelease>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map(|h| h.inventory().to_vec()),
    };
    match got {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if root => Err(not_found_or(
            e,
            owner.kind(),
            ns,
            name,
            owner.flux_kind().list_command(),
        )),
        Err(e) if kube_util::is_not_found(&e) => Ok(None),
        Err(e) => Err(kube_util::user_kube_error(
            e,
            &format!("getting {}", owner.kind()),
        )),
    }
}

fn expand<'a>(
    client: &'a kube::Client,
    owner: Owner,
    ns: &'a str,
    name: &'a str,
    seen: &'a mut HashSet<(Owner, String, String)>,
    root: bool,
) -> futures::future::BoxFuture<'a, Result<Node>> {
    Box::pin(async move {
        let resource = format!("{}/{ns}/{name}", owner.kind());
        let mut node = Node {
            resource,
            resources: vec![],
        };
        if !seen.insert((owner, ns.to_string(), name.to_string())) {
            return Ok(node);
        }
        let Some(entries) = inventory(client, owner, ns, name, root).await? else {
            return Ok(node);
        };
        for entry in entries {
            let Ok(id) = ObjectId::parse(&entry.id) else {
                continue;
            };
            match Owner::of(&id) {
                Some(inner) => node
                    .resources
                    .push(expand(client, inner, &id.namespace, &id.name, seen, false).await?),
                None => node.resources.push(Node {
                    resource: label(&id),
                    resources: vec![],
                }),
            }
        }
        Ok(node)
    })
}

/// The tree drawn with box characters, as `flux tree` does.
pub fn render(node: &Node) -> String {
    let mut out = format!("{}\n", node.resource);
    draw(&node.resources, "", &mut out);
    out
}

fn draw(children: &[Node], prefix: &str, out: &mut String) {
    for (i, c) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        out.push_str(prefix);
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&c.resource);
        out.push('\n');
        let next = format!("{prefix}{}", if last { "    " } else { "│   " });
        draw(&c.resources, &next, out);
    }
}

/// Runs `sluice tree`.
pub async fn run(g: &GlobalArgs, args: TreeArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let (owner, t) = match args.what {
        TreeWhat::Kustomization(t) => (Owner::Kustomization, t),
        TreeWhat::HelmRelease(t) => (Owner::HelmRelease, t),
    };
    let tree = build(&client, owner, &g.namespace, &t.name).await?;
    match args.output {
        OutputFormat::Table => print!("{}", render(&tree)),
        format => print_data(format, &tree)?,
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_like_flux() {
        let leaf = |r: &str| Node {
            resource: r.into(),
            resources: vec![],
        };
        let tree = Node {
            resource: "Kustomization/flux-system/flux-system".into(),
            resources: vec![
                Node {
                    resource: "Kustomization/flux-system/apps".into(),
                    resources: vec![leaf("Namespace/apps"), leaf("Deployment/apps/memos")],
                },
                leaf("GitRepository/flux-system/flux-system"),
            ],
        };
        assert_eq!(
            render(&tree),
            "Kustomization/flux-system/flux-system\n\
             ├── Kustomization/flux-system/apps\n\
             │   ├── Namespace/apps\n\
             │   └── Deployment/apps/memos\n\
             └── GitRepository/flux-system/flux-system\n"
        );
    }
}
