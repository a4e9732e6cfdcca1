//! `sluice logs`: the controller's logs through the pods/log API.

use anyhow::Result;
use clap::Args;
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, ResourceExt};
use serde_json::Value;

use crate::install::CONTROLLER_NAME;
use crate::kube_util;
use crate::{GlobalArgs, Outcome, UserError};

/// `sluice logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines (of each Pod).
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,

    /// Only lines of this level or more severe (error, warn, info, debug),
    /// for JSON logs.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<String>,
}

fn severity(level: &str) -> u8 {
    match level.to_ascii_lowercase().as_str() {
        "error" => 4,
        "warn" | "warning" => 3,
        "info" => 2,
        "debug" => 1,
        _ => 0,
    }
}

/// Whether a log line passes the `--level` filter (non-JSON lines always
/// pass).
pub fn passes(line: &str, min: Option<&str>) -> bool {
    let Some(min) = min else {
        return true;
    };
    match serde_json::from_str::<Value>(line) {
        Ok(v) => v["level"]
            .as_str()
            .is_none_or(|l| severity(l) >= severity(min)),
        Err(_) => true,
    }
}

/// Runs `sluice logs`.
pub async fn run(g: &GlobalArgs, args: LogsArgs) -> Result<Outcome> {
    let client = kube_util::client(g).await?;
    let ns = g.namespace.as_str();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={CONTROLLER_NAME}")))
        .await
        .map_err(|e| kube_util::user_kube_error(e, "listing the controller Pods"))?;
    if list.items.is_empty() {
        return Err(UserError::new(format!(
            "no sluice controller Pods in namespace {ns}"
        ))
        .hint(format!(
            "install the controller with `sluice install -n {ns}`, or pass the namespace it runs in with -n"
        ))
        .into());
    }
    let many = list.items.len() > 1;
    let params = LogParams {
        container: Some("manager".into()),
        follow: args.follow,
        tail_lines: args.tail,
        ..LogParams::default()
    };
    let mut sources = Vec::new();
    for pod in &list.items {
        let name = pod.name_any();
        let stream = pods.log_stream(&name, &params).await.map_err(|e| {
            kube_util::user_kube_error(e, &format!("reading the logs of Pod {ns}/{name}"))
        })?;
        let prefix = if many {
            format!("{name} ")
        } else {
            String::new()
        };
        sources.push((prefix, Box::pin(stream)));
    }
    print_merged(sources, args.level.as_deref(), &mut std::io::stdout()).await?;
    Ok(Outcome::Ok)
}

/// Prints the lines of every source as they arrive (interleaved by arrival,
/// each after its prefix), keeping those that pass `--level`.
async fn print_merged<R>(
    sources: Vec<(String, R)>,
    level: Option<&str>,
    out: &mut impl std::io::Write,
) -> Result<()>
where
    R: futures::AsyncBufRead + Unpin,
{
    let streams = sources
        .into_iter()
        .map(|(prefix, r)| r.lines().map(move |l| (prefix.clone(), l)));
    let mut merged = futures::stream::select_all(streams);
    while let Some((prefix, line)) = merged.next().await {
        let line = line.map_err(|e| UserError::new(format!("reading logs: {e}")))?;
        if passes(&line, level) {
            writeln!(out, "{prefix}{line}")?;
            out.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_filter() {
        assert!(passes("{\"level\":\"error\",\"msg\":\"x\"}", Some("warn")));
        assert!(!passes("{\"level\":\"info\",\"msg\":\"x\"}", Some("warn")));
        assert!(passes("plain text", Some("error")));
        assert!(passes("{\"level\":\"debug\"}", None));
    }

    #[tokio::test]
    async fn merges_pods_with_prefixes_and_filters_levels() {
        let a = futures::io::Cursor::new(
            b"{\"level\":\"info\",\"msg\":\"a1\"}\n{\"level\":\"error\",\"msg\":\"a2\"}\n".to_vec(),
        );
        let b = futures::io::Cursor::new(b"plain b1\n{\"level\":\"warn\",\"msg\":\"b2\"}".to_vec());
        let mut out = Vec::new();
        print_merged(
            vec![("pod-a ".to_owned(), a), ("pod-b ".to_owned(), b)],
            Some("warn"),
            &mut out,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "pod-a {\"level\":\"error\",\"msg\":\"a2\"}",
                "pod-b plain b1",
                "pod-b {\"level\":\"warn\",\"msg\":\"b2\"}",
            ]
        );
    }
}
