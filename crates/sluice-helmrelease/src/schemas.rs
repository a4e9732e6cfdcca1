//! The `http(s)` documents a chart's `values.schema.json` refers to, fetched
//! as Helm fetches them while it validates (bjw-s's app-template, the most
//! used chart in homelab repositories, keeps its schemas on GitHub and refers
//! to them by URL). `sluice_helm` never reaches the network: this module
//! lists what the chart needs ([`sluice_helm::render::schema::external_documents`]),
//! fetches it, and hands the documents to the renderer.
//!
//! Beyond Helm, which fetches every document at every render: documents are
//! kept for an hour (a failure for a minute, so a network blip heals), each
//! one is bounded in size and time, and a chart may pull at most
//! [`MAX_DOCUMENTS`]. `file` references (the controller's own files) are
//! never read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_helm::chart::Chart;
use sluice_helm::render::schema::{Documents, external_documents};

/// At most this many documents for one chart (its subcharts included).
pub const MAX_DOCUMENTS: usize = 64;
/// The largest document read (bytes).
pub const MAX_DOCUMENT_SIZE: u64 = 4 << 20;
/// Helm's timeout for one document.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a fetched document is reused.
const KEEP: Duration = Duration::from_secs(3600);
/// How long a failure is remembered before the document is asked for again.
const KEEP_FAILURE: Duration = Duration::from_secs(60);
/// Documents kept at most (the oldest go first).
const CACHE_SIZE: usize = 256;

type Fetched = Result<serde_json::Value, String>;

static CACHE: Mutex<BTreeMap<String, (Instant, Fetched)>> = Mutex::new(BTreeMap::new());

/// The documents the schemas of `chart` need, fetched (or from the cache).
/// Runs the blocking fetches off the async runtime. Empty, without any
/// request, for a chart whose schemas refer to nothing outside.
pub async fn documents(chart: &Chart) -> Documents {
    let mut docs = BTreeMap::new();
    loop {
        let wanted = next_wanted(chart, &mut docs);
        if wanted.is_empty() {
            break;
        }
        let got = tokio::task::spawn_blocking(move || fetch_all(wanted))
            .await
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        docs.extend(got);
    }
    Arc::new(docs)
}

/// Gives `opts` the documents `chart` needs, unless it skips schema validation.
pub async fn attach(opts: &mut sluice_helm::render::Options, chart: &Chart) {
    if !opts.skip_schema_validation {
        opts.schema_documents = documents(chart).await;
    }
}

/// [`documents`], for a caller without an async runtime (`sluice helm template`).
pub fn documents_blocking(chart: &Chart) -> Documents {
    let mut docs = BTreeMap::new();
    loop {
        let wanted = next_wanted(chart, &mut docs);
        if wanted.is_empty() {
            break;
        }
        docs.extend(fetch_all(wanted));
    }
    Arc::new(docs)
}

/// What to fetch next: the references not fetched yet, within the bound.
/// Those past it are recorded in `docs` as failures, so validation names them.
fn next_wanted(chart: &Chart, docs: &mut BTreeMap<String, Fetched>) -> Vec<String> {
    let have: Documents = Arc::new(docs.clone());
    let mut wanted: Vec<String> = external_documents(chart, &have).into_iter().collect();
    let room = MAX_DOCUMENTS.saturating_sub(docs.len());
    for over in wanted.split_off(room.min(wanted.len())) {
        docs.insert(
            over,
            Err(format!(
                "the chart's schemas refer to more than {MAX_DOCUMENTS} documents"
            )),
        );
    }
    wanted
}

/// Fetches `urls` one after the other. Once a server cannot be reached, the
/// rest of its documents fail with the same error without another try: an
/// unreachable GitHub in an air-gapped cluster costs one timeout, not one per
/// document.
fn fetch_all(urls: Vec<String>) -> BTreeMap<String, Fetched> {
    let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
    urls.into_iter()
        .map(|u| {
            let doc = cached(&u).unwrap_or_else(|| {
                let server = server_of(&u);
                if let Some(why) = unreachable.get(&server) {
                    return Err(why.clone());
                }
                let got = match fetch(&u) {
                    Ok(got) => got,
                    Err(Unreachable(why)) => {
                        unreachable.insert(server, why.clone());
                        Err(why)
                    }
                };
                remember(&u, &got);
                got
            });
            (u, doc)
        })
        .collect()
}

/// `scheme://host:port` of a URL.
fn server_of(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    url[..end].to_ascii_lowercase()
}

/// Why a document could not be had; `Unreachable` when the server could not
/// be reached at all (no answer, not an HTTP error).
struct Unreachable(String);

fn cached(url: &str) -> Option<Fetched> {
    let cache = CACHE.lock().ok()?;
    let (at, doc) = cache.get(url)?;
    let keep = if doc.is_ok() { KEEP } else { KEEP_FAILURE };
    (at.elapsed() < keep).then(|| doc.clone())
}

fn remember(url: &str, doc: &Fetched) {
    let Ok(mut cache) = CACHE.lock() else { return };
    if cache.len() >= CACHE_SIZE
        && !cache.contains_key(url)
        && let Some(oldest) = cache
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(k, _)| k.clone())
    {
        cache.remove(&oldest);
    }
    cache.insert(url.to_string(), (Instant::now(), doc.clone()));
}

/// One document: GET with Helm's timeout, at most [`MAX_DOCUMENT_SIZE`]
/// bytes, JSON. The outer error is a server that could not be reached.
fn fetch(url: &str) -> Result<Fetched, Unreachable> {
    use std::error::Error as _;
    use std::io::Read;
    sluice_git::install_crypto_provider();
    let client = match reqwest::blocking::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("HTTP client: {e}"))),
    };
    let resp = match client.get(url).send() {
        Ok(r) => r,
        // The server, not this document: the reason names the server and the cause beneath
        // reqwest's "error sending request for url (...)", and is given as it is to the
        // server's other documents (`fetch_all`).
        Err(e) if e.is_connect() || e.is_timeout() => {
            let cause = e
                .source()
                .map(sluice_api::meta::error_chain)
                .unwrap_or_else(|| e.to_string());
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "could not be reached"
            };
            return Err(Unreachable(format!(
                "HTTP request failed: {} {what}: {cause}",
                server_of(url)
            )));
        }
        Err(e) => return Ok(Err(format!("HTTP request failed: {e}"))),
    };
    if !resp.status().is_success() {
        return Ok(Err(format!("HTTP status {}", resp.status())));
    }
    let mut body = Vec::new();
    if let Err(e) = resp.take(MAX_DOCUMENT_SIZE + 1).read_to_end(&mut body) {
        return Ok(Err(format!("reading the response: {e}")));
    }
    if body.len() as u64 > MAX_DOCUMENT_SIZE {
        return Ok(Err(format!("larger than {MAX_DOCUMENT_SIZE} bytes")));
    }
    Ok(serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_testsupport::static_http::StaticServer;

    fn chart_with_schema(schema: String) -> Chart {
        Chart {
            metadata: sluice_helm::chart::Metadata {
                name: "app".into(),
                version: "1.0.0".into(),
                api_version: "v2".into(),
                ..Default::default()
            },
            schema: Some(schema.into_bytes()),
            ..Default::default()
        }
    }

    #[test]
    fn referenced_schemas_are_fetched_once_and_validate() {
        let server = StaticServer::start([
            (
                "/c/schemas/pod.json",
                r#"{"options":{"type":"object","properties":{"port":{"$ref":"defs.json#/port"}}}}"#,
            ),
            ("/c/schemas/defs.json", r#"{"port":{"type":"integer"}}"#),
        ]);
        let addr = &server.url;
        // As bjw-s's common library: `$id` on the server, `$ref`s relative to it.
        let chart = chart_with_schema(format!(
            r#"{{"$id":"{addr}/c/values.schema.json",
                "properties":{{"pod":{{"$ref":"schemas/pod.json#/options"}},
                               "gone":{{"$ref":"schemas/missing.json"}}}}}}"#
        ));
        let docs = documents_blocking(&chart);
        assert_eq!(docs.len(), 3, "{:?}", docs.keys().collect::<Vec<_>>());
        assert!(docs[&format!("{addr}/c/schemas/defs.json")].is_ok());
        assert_eq!(
            docs[&format!("{addr}/c/schemas/missing.json")],
            Err("HTTP status 404 Not Found".to_string())
        );
        assert_eq!(server.hits(), 3);
        // A second render asks the server for nothing (the failure is kept a minute too).
        let again = documents_blocking(&chart);
        assert_eq!(server.hits(), 3);
        assert_eq!(again, docs);

        let values = |t: &str| sluice_helm::values::load_values(t.as_bytes()).unwrap();
        let opts = sluice_helm::render::Options {
            schema_documents: docs,
            ..Default::default()
        };
        let e = sluice_helm::render::render(&chart, &values("pod: {port: 80}\n"), &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{addr}/c/schemas/missing.json (HTTP status 404 Not Found), which could not be fetched")),
            "{e}"
        );
        // With the missing reference gone, the fetched documents validate.
        let chart = chart_with_schema(format!(
            r#"{{"$id":"{addr}/c/values.schema.json",
                "properties":{{"pod":{{"$ref":"schemas/pod.json#/options"}}}}}}"#
        ));
        let opts = sluice_helm::render::Options {
            schema_documents: documents_blocking(&chart),
            ..Default::default()
        };
        assert!(sluice_helm::render::render(&chart, &values("pod: {port: 80}\n"), &opts).is_ok());
        let e = sluice_helm::render::render(&chart, &values("pod: {port: http}\n"), &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("- at '/pod/port': "), "{e}");
        assert_eq!(server.hits(), 3);
    }

    #[test]
    fn an_unreachable_server_costs_one_try_not_one_per_document() {
        // A port nothing listens on: the first document's connection is refused, the
        // other two are not tried.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chart = chart_with_schema(format!(
            r#"{{"$id":"http://127.0.0.1:{port}/c/values.schema.json",
                "properties":{{"a":{{"$ref":"a.json"}},"b":{{"$ref":"b.json"}},"c":{{"$ref":"c.json"}}}}}}"#
        ));
        let started = std::time::Instant::now();
        let docs = documents_blocking(&chart);
        assert_eq!(docs.len(), 3);
        let errors: Vec<&String> = docs.values().map(|d| d.as_ref().unwrap_err()).collect();
        assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
        assert!(
            errors[0].starts_with("HTTP request failed"),
            "{}",
            errors[0]
        );
        assert!(started.elapsed() < FETCH_TIMEOUT);
        // The reason names the server and the cause, not the first document's URL, and the
        // validation lists the three documents once under it.
        assert!(
            errors[0].starts_with(&format!(
                "HTTP request failed: http://127.0.0.1:{port} could not be reached: "
            )) && errors[0].contains("Connection refused"),
            "{}",
            errors[0]
        );
        let opts = sluice_helm::render::Options {
            schema_documents: docs.clone(),
            ..Default::default()
        };
        let values = sluice_helm::values::load_values(b"a: 1\n").unwrap();
        let e = sluice_helm::render::render(&chart, &values, &opts)
            .unwrap_err()
            .to_string();
        let base = format!("http://127.0.0.1:{port}/c");
        assert!(
            e.contains(&format!(
                "{base}/a.json, {base}/b.json, {base}/c.json ({}), which could not be fetched; vendor them",
                errors[0]
            )),
            "{e}"
        );
        assert_eq!(
            server_of("HTTPS://Example.com:8443/a/b.json"),
            "https://example.com:8443"
        );
    }

    #[test]
    fn file_references_are_never_read() {
        let chart = chart_with_schema(r#"{"$ref":"file:///etc/hostname"}"#.to_string());
        assert!(documents_blocking(&chart).is_empty());
        let values = sluice_helm::values::load_values(b"a: 1\n").unwrap();
        let e = sluice_helm::render::render(&chart, &values, &Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("file:///etc/hostname, which sluice does not fetch"),
            "{e}"
        );
    }
}
