//! `sluice tree kustomization NAME`: the inventory as a tree, Kustomizations
//! in it expanded (as `flux tree`).

use std::collections::HashSet;

use anyhow::Result;
use clap::{Args, Subcommand};
use kube::Api;
use serde::Serialize;
use sluice_api::Kustomization;
use sluice_api::meta::ObjectId;

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
}

/// The Kustomization.
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
    /// Its children (for Kustomizations).
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

/// Builds the tree of a Kustomization.
pub async fn build(client: &kube::Client, ns: &str, name: &str) -> Result<Node> {
    let mut seen = HashSet::new();
    expand(client, ns, name, &mut seen, true).await
}

fn expand<'a>(
    client: &'a kube::Client,
    ns: &'a str,
    name: &'a str,
    seen: &'a mut HashSet<(String, String)>,
    root: bool,
) -> futures::future::BoxFuture<'a, Result<Node>> {
    Box::pin(async move {
        let resource = format!("Kustomization/{ns}/{name}");
        let mut node = Node {
            resource,
            resources: vec![],
        };
        if !seen.insert((ns.to_string(), name.to_string())) {
            return Ok(node);
        }
        let api: Api<Kustomization> = Api::namespaced(client.clone(), ns);
        let ks = match api.get(name).await {
            Ok(ks) => ks,
            Err(e) if root => {
                return Err(not_found_or(
                    e,
                    "Kustomization",
                    ns,
                    name,
                    FluxKind::Kustomization.list_command(),
                ));
            }
            Err(e) if kube_util::is_not_found(&e) => return Ok(node),
            Err(e) => return Err(kube_util::user_kube_error(e, "getting Kustomization")),
        };
        for entry in ks.inventory() {
            let Ok(id) = ObjectId::parse(&entry.id) else {
                continue;
            };
            if id.kind == "Kustomization" && id.group == sluice_api::kustomization::GROUP {
                node.resources
                    .push(expand(client, &id.namespace, &id.name, seen, false).await?);
            } else {
                node.resources.push(Node {
                    resource: label(&id),
                    resources: vec![],
                });
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
    let TreeWhat::Kustomization(t) = args.what;
    let tree = build(&client, &g.namespace, &t.name).await?;
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
