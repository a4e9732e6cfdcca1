//! HelmRepository and HelmChart against the local control plane: a local
//! HTTP Helm repository (`sluice_testsupport::oci_registry::HelmRepoServer`,
//! an `index.yaml` and chart archives, optional basic auth), a real OCI
//! registry for `type: oci`, and a Git server for charts in a repository.

use std::time::Duration;

use kube::Api;
use serde_json::json;
use sluice_api::meta;
use sluice_api::source::GitRepository;
use sluice_api::source::helm::{HelmChart, HelmRepository};
use sluice_testsupport::oci_registry::{HelmRepoServer, OciRegistry, RegistryConfig};
use sluice_testsupport::{TestNamespace, client, wait_for};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

struct Env {
    ns: TestNamespace,
    repos: Api<HelmRepository>,
    charts: Api<HelmChart>,
    _h: Harness,
}

async fn setup(prefix: &str) -> Env {
    let client = client().await;
    install_crd(&client).await;
    let ns = TestNamespace::create(&client, prefix).await;
    let h = Harness::start(&client, ns.name()).await;
    Env {
        repos: ns.api(),
        charts: ns.api(),
        ns,
        _h: h,
    }
}

fn values_of(chart: &[u8], name: &str) -> String {
    String::from_utf8_lossy(&untar(chart)[&format!("{name}/values.yaml")]).into_owned()
}

#[tokio::test]
async fn a_chart_from_an_http_repository_follows_new_versions_and_polls_cheaply() {
    let dir = tempfile::tempdir().unwrap();
    let server = HelmRepoServer::start(dir.path(), None);
    let v010 = chart_tgz("hello", "0.1.0", "one");
    server.add_chart(&v010);
    let env = setup("helm-http").await;

    create_source(
        &env.repos,
        "HelmRepository",
        "charts",
        json!({"url": server.url(), "interval": "10m"}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "hello",
        json!({"chart": "hello",
        "version": "0.1.x", "interval": "10m",
        "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    )
    .await;

    let repo = wait_for(&env.repos, "charts", WAIT, ready).await;
    let index = artifact_of(&repo).unwrap();
    let (_, body) = http_get(&index.url).await;
    assert_eq!(body, std::fs::read(dir.path().join("index.yaml")).unwrap());
    assert_eq!(index.revision, sluice_source::storage::digest_bytes(&body));
    assert_eq!(
        cond(&repo, meta::READY_CONDITION).unwrap().2,
        format!("stored artifact: revision '{}'", index.revision)
    );

    let chart = wait_for(&env.charts, "hello", WAIT, ready).await;
    let a = artifact_of(&chart).unwrap();
    assert_eq!(a.revision, "0.1.0");
    assert_eq!(
        a.path,
        format!("helmchart/{}/hello/hello-0.1.0.tgz", env.ns.name())
    );
    let (_, reason, message) = cond(&chart, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "ChartPullSucceeded");
    assert_eq!(message, "pulled 'hello' chart with version '0.1.0'");
    assert_eq!(http_get(&a.url).await.1, v010, "pulled as it is");
    // status.url, as Flux's: a link beside the artifact (the repository's `index.yaml`, the
    // chart's `latest.tar.gz`).
    let dir_of = |url: &str| url.rsplit_once('/').unwrap().0.to_owned();
    for (status, link, want) in [
        (json(&repo), "index.yaml", body.clone()),
        (json(&chart), "latest.tar.gz", v010.clone()),
    ] {
        let url = status["status"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let artifact_url = status["status"]["artifact"]["url"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(url, format!("{}/{link}", dir_of(artifact_url)));
        assert_eq!(http_get(&url).await.1, want, "{url}");
    }
    assert_eq!(json(&chart)["status"]["observedChartName"], "hello");
    assert_eq!(
        json(&chart)["status"]["observedSourceArtifactRevision"],
        json!(index.revision)
    );

    // A poll of an unchanged index downloads the index only.
    let before = (server.count("/index.yaml"), server.total());
    let token = request(&env.repos, "charts").await;
    wait_for(&env.repos, "charts", WAIT, |o| {
        json(o)["status"]["lastHandledReconcileAt"] == json!(token)
    })
    .await;
    assert_eq!(server.count("/index.yaml"), before.0 + 1);
    assert_eq!(server.total(), before.1 + 1, "no chart download");

    // A new version within the range: the repository's new index wakes the
    // chart.
    server.add_chart(&chart_tgz("hello", "0.1.1", "two"));
    request(&env.repos, "charts").await;
    let chart = wait_for(&env.charts, "hello", WAIT, |o| {
        artifact_of(o).is_some_and(|a| a.revision == "0.1.1")
    })
    .await;
    let a = artifact_of(&chart).unwrap();
    assert!(values_of(&http_get(&a.url).await.1, "hello").contains("two"));

    // A version that does not exist stalls with Flux's reason.
    patch_spec(&env.charts, "hello", json!({"version": "9.x"})).await;
    let failed = wait_for(&env.charts, "hello", WAIT, |o| {
        failed_with(o, "InvalidChartReference")
    })
    .await;
    let (_, _, message) = cond(&failed, meta::READY_CONDITION).unwrap();
    assert!(
        message.starts_with(
            "invalid chart reference: failed to get chart version for remote reference:"
        ),
        "{message}"
    );
    assert!(message.contains("9.x"), "{message}");
    assert_eq!(artifact_of(&failed), Some(a), "the last chart is kept");
}

#[tokio::test]
async fn values_files_are_merged_into_a_repackaged_chart() {
    let dir = tempfile::tempdir().unwrap();
    let server = HelmRepoServer::start(dir.path(), None);
    // A chart with a second values file.
    let mut files = untar(&chart_tgz("hello", "1.2.3", "base"));
    files.insert(
        "hello/values-prod.yaml".into(),
        b"greeting: prod\nreplicas: 3\n".to_vec(),
    );
    server.add_chart(&tgz(&files));
    let env = setup("helm-values").await;
    create_source(
        &env.repos,
        "HelmRepository",
        "charts",
        json!({"url": server.url(), "interval": "10m"}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "hello",
        json!({"chart": "hello",
        "interval": "10m", "valuesFiles": ["values.yaml", "values-prod.yaml"],
        "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    )
    .await;
    let chart = wait_for(&env.charts, "hello", WAIT, ready).await;
    let a = artifact_of(&chart).unwrap();
    let generation = chart.metadata.generation.unwrap();
    assert_eq!(a.revision, format!("1.2.3+{generation}"));
    let (_, reason, message) = cond(&chart, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "ChartPackageSucceeded");
    assert_eq!(
        message,
        format!(
            "packaged 'hello' chart with version '1.2.3+{generation}' and merged values files [values.yaml values-prod.yaml]"
        )
    );
    let values = values_of(&http_get(&a.url).await.1, "hello");
    assert!(
        values.contains("greeting: prod") && values.contains("replicas: 3"),
        "{values}"
    );
    assert_eq!(
        json(&chart)["status"]["observedValuesFiles"],
        json!(["values.yaml", "values-prod.yaml"])
    );

    // A values file that is not there: BuildFailed, the chart kept.
    patch_spec(
        &env.charts,
        "hello",
        json!({"valuesFiles": ["missing.yaml"]}),
    )
    .await;
    let failed = wait_for(&env.charts, "hello", WAIT, |o| {
        failed_with(o, "ValuesFilesError")
    })
    .await;
    assert!(cond(&failed, meta::BUILD_FAILED_CONDITION).is_some_and(|c| c.0 == "True"));
    assert!(cond(&failed, meta::FETCH_FAILED_CONDITION).is_none());
    assert_eq!(artifact_of(&failed), Some(a));

    // Unless missing ones may be ignored: what was merged is recorded.
    patch_spec(
        &env.charts,
        "hello",
        json!({"valuesFiles": ["values-prod.yaml", "missing.yaml"], "ignoreMissingValuesFiles": true}),
    )
    .await;
    let chart = wait_for(&env.charts, "hello", WAIT, ready).await;
    assert_eq!(
        json(&chart)["status"]["observedValuesFiles"],
        json!(["values-prod.yaml"])
    );
    assert!(cond(&chart, meta::BUILD_FAILED_CONDITION).is_none());
    assert!(
        cond(&chart, meta::READY_CONDITION)
            .unwrap()
            .2
            .ends_with("and merged values files [values-prod.yaml]")
    );
}

#[tokio::test]
async fn wrong_repository_credentials_are_authentication_failed_and_block_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let server = HelmRepoServer::start(dir.path(), Some(("flux", "r3po-pass")));
    server.add_chart(&chart_tgz("hello", "0.1.0", "one"));
    let env = setup("helm-auth").await;
    secret(
        &env.ns,
        "creds",
        &[("username", "flux"), ("password", "not-the-pass")],
    )
    .await;
    create_source(
        &env.repos,
        "HelmRepository",
        "charts",
        json!({"url": server.url(),
        "interval": "10m", "secretRef": {"name": "creds"}}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "hello",
        json!({"chart": "hello",
        "interval": "10m", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    )
    .await;
    let failed = wait_for(&env.repos, "charts", WAIT, |o| {
        failed_with(o, meta::AUTHENTICATION_FAILED_REASON)
    })
    .await;
    let text = json(&failed).to_string();
    assert!(!text.contains("not-the-pass"), "{text}");
    assert!(text.contains("401"), "the status code is named: {text}");
    let waiting = wait_for(&env.charts, "hello", WAIT, |o| {
        failed_with(o, "NoSourceArtifact")
    })
    .await;
    assert_eq!(
        cond(&waiting, meta::READY_CONDITION).unwrap().2,
        "no artifact available for HelmRepository source 'charts'"
    );

    secret(
        &env.ns,
        "creds",
        &[("username", "flux"), ("password", "r3po-pass")],
    )
    .await;
    request(&env.repos, "charts").await;
    wait_for(&env.repos, "charts", WAIT, ready).await;
    let chart = wait_for(&env.charts, "hello", WAIT, ready).await;
    assert_eq!(artifact_of(&chart).unwrap().revision, "0.1.0");
}

#[tokio::test]
async fn a_chart_from_an_oci_repository_and_the_repository_stays_static() {
    let Some(reg) = OciRegistry::start(RegistryConfig::basic("flux", "oci-pass")) else {
        return;
    };
    let v1 = chart_tgz("podinfo", "6.5.4", "one");
    reg.push_chart("charts", &v1);
    reg.push_chart("charts", &chart_tgz("podinfo", "6.6.0", "two"));
    let env = setup("helm-oci").await;
    secret(
        &env.ns,
        "creds",
        &[("username", "flux"), ("password", "oci-pass")],
    )
    .await;
    create_source(
        &env.repos,
        "HelmRepository",
        "oci",
        json!({"url": reg.url("charts"),
        "type": "oci", "insecure": true, "secretRef": {"name": "creds"}}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "podinfo",
        json!({"chart": "podinfo",
        "version": "6.5.x", "interval": "10m",
        "sourceRef": {"kind": "HelmRepository", "name": "oci"}}),
    )
    .await;
    let chart = wait_for(&env.charts, "podinfo", WAIT, ready).await;
    let a = artifact_of(&chart).unwrap();
    assert_eq!(a.revision, "6.5.4");
    assert_eq!(http_get(&a.url).await.1, v1);
    // Static: no finalizer, no status.
    let repo = env.repos.get("oci").await.unwrap();
    assert!(
        repo.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(cond(&repo, meta::READY_CONDITION).is_none());

    patch_spec(&env.charts, "podinfo", json!({"version": ">=6.0.0"})).await;
    let chart = wait_for(&env.charts, "podinfo", WAIT, |o| {
        artifact_of(o).is_some_and(|a| a.revision == "6.6.0")
    })
    .await;
    assert!(ready(&chart));
}

#[tokio::test]
async fn a_chart_in_a_git_repository_is_packaged_with_the_revision() {
    let repo = Repo::new("charts");
    let files = untar(&chart_tgz("hello", "0.3.0", "git"));
    for (path, data) in &files {
        repo.write(&format!("charts/{path}"), &String::from_utf8_lossy(data));
    }
    repo.write("charts/hello/values-prod.yaml", "greeting: prod\n");
    let commit = repo.commit("chart");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    let env = setup("helm-git").await;
    let gits: Api<GitRepository> = env.ns.api();
    create_source(
        &gits,
        "GitRepository",
        "charts",
        json!({"url": server.url("charts"),
        "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "hello",
        json!({"chart": "charts/hello",
        "interval": "10m", "reconcileStrategy": "Revision",
        "valuesFiles": ["charts/hello/values.yaml", "charts/hello/values-prod.yaml"],
        "sourceRef": {"kind": "GitRepository", "name": "charts"}}),
    )
    .await;
    let chart = wait_for(&env.charts, "hello", WAIT, ready).await;
    let generation = chart.metadata.generation.unwrap();
    let a = artifact_of(&chart).unwrap();
    assert_eq!(a.revision, format!("0.3.0+{}.{generation}", &commit[..12]));
    assert_eq!(
        cond(&chart, meta::READY_CONDITION).unwrap().1,
        "ChartPackageSucceeded"
    );
    let packaged = http_get(&a.url).await.1;
    assert!(values_of(&packaged, "hello").contains("greeting: prod"));
    let chart_yaml = String::from_utf8_lossy(&untar(&packaged)["hello/Chart.yaml"]).into_owned();
    assert!(
        chart_yaml.contains(&format!("version: 0.3.0+{}.{generation}", &commit[..12])),
        "{chart_yaml}"
    );

    // A new commit is a new chart version.
    repo.write("charts/hello/values-prod.yaml", "greeting: newer\n");
    let next = repo.commit("values");
    repo.push("main");
    request(&gits, "charts").await;
    let chart = wait_for(&env.charts, "hello", WAIT, |o| {
        artifact_of(o).is_some_and(|a| a.revision.contains(&next[..12]))
    })
    .await;
    let packaged = http_get(&artifact_of(&chart).unwrap().url).await.1;
    assert!(values_of(&packaged, "hello").contains("greeting: newer"));
}

#[tokio::test]
async fn a_chart_in_git_gets_its_dependencies_from_chart_repositories() {
    let Some(reg) = OciRegistry::start(RegistryConfig::basic("flux", "oci-pass")) else {
        return;
    };
    reg.push_chart("charts", &chart_tgz("podinfo", "6.5.4", "oci-older"));
    reg.push_chart("charts", &chart_tgz("podinfo", "6.6.0", "oci"));
    let private_dir = tempfile::tempdir().unwrap();
    let private = HelmRepoServer::start(private_dir.path(), Some(("flux", "r3po-pass")));
    private.add_chart(&chart_tgz("hello", "0.1.0", "private"));
    private.add_chart(&chart_tgz("hello", "0.1.1", "private-newer"));
    private.add_chart(&chart_tgz("hello", "0.2.0", "out-of-range"));
    let public_dir = tempfile::tempdir().unwrap();
    let public = HelmRepoServer::start(public_dir.path(), None);
    public.add_chart(&chart_tgz("greeter", "1.0.0", "public"));

    // The umbrella chart names each repository by URL: the private one
    // without the trailing slash its HelmRepository has, the public one
    // with a slash and no HelmRepository at all.
    let chart_yaml = |version: &str, hello_repo: &str| {
        format!(
            "apiVersion: v2\nname: umbrella\nversion: {version}\ndependencies:\n\
             - name: hello\n  version: 0.1.x\n  repository: \"{hello_repo}\"\n\
             - name: podinfo\n  alias: info\n  version: \">=6.0.0\"\n  repository: {}\n\
             - name: greeter\n  version: 1.0.0\n  repository: {}/\n",
            reg.url("charts"),
            public.url()
        )
    };
    let repo = Repo::new("umbrella");
    repo.write("umbrella/Chart.yaml", &chart_yaml("1.0.0", &private.url()));
    repo.write(
        "umbrella/values.yaml",
        "hello:\n  greeting: from-umbrella\n",
    );
    repo.commit("umbrella chart");
    repo.push("main");
    let server = GitServer::start(&repo.served_root(), None).await;
    let env = setup("helm-deps").await;
    secret(
        &env.ns,
        "repo-creds",
        &[("username", "flux"), ("password", "r3po-pass")],
    )
    .await;
    secret(
        &env.ns,
        "oci-creds",
        &[("username", "flux"), ("password", "oci-pass")],
    )
    .await;
    create_source(
        &env.repos,
        "HelmRepository",
        "private",
        json!({"url": format!("{}/", private.url()), "interval": "10m",
        "secretRef": {"name": "repo-creds"}}),
    )
    .await;
    create_source(
        &env.repos,
        "HelmRepository",
        "oci",
        json!({"url": reg.url("charts"), "type": "oci", "insecure": true,
        "secretRef": {"name": "oci-creds"}}),
    )
    .await;
    let gits: Api<GitRepository> = env.ns.api();
    create_source(
        &gits,
        "GitRepository",
        "umbrella",
        json!({"url": server.url("umbrella"), "interval": "10m", "ref": {"branch": "main"}}),
    )
    .await;
    create_source(
        &env.charts,
        "HelmChart",
        "umbrella",
        json!({"chart": "umbrella", "interval": "10m",
        "sourceRef": {"kind": "GitRepository", "name": "umbrella"}}),
    )
    .await;

    let chart = wait_for(&env.charts, "umbrella", WAIT, ready).await;
    let (_, reason, message) = cond(&chart, meta::READY_CONDITION).unwrap();
    assert_eq!(reason, "ChartPackageSucceeded");
    assert_eq!(message, "packaged 'umbrella' chart with version '1.0.0'");
    let a = artifact_of(&chart).unwrap();
    let files = untar(&http_get(&a.url).await.1);
    let text = |path: &str| {
        String::from_utf8_lossy(
            files
                .get(path)
                .unwrap_or_else(|| panic!("{path} in {:?}", files.keys())),
        )
        .into_owned()
    };
    // The highest 0.1.x, with the private repository's credentials.
    assert!(text("umbrella/charts/hello/Chart.yaml").contains("version: 0.1.1"));
    assert!(text("umbrella/charts/hello/values.yaml").contains("private-newer"));
    // A range resolved among the registry's tags; the alias names it.
    let info = text("umbrella/charts/info/Chart.yaml");
    assert!(info.contains("name: info"), "{info}");
    assert!(info.contains("version: 6.6.0"), "{info}");
    // No HelmRepository: anonymous.
    assert!(text("umbrella/charts/greeter/values.yaml").contains("public"));
    assert!(private.count("/hello-0.1.1.tgz") >= 1);
    assert_eq!(private.count("/hello-0.2.0.tgz"), 0);

    // Reconciled again at the same version: the stored chart is kept, and
    // still reported as packaged (Flux's wording for a chart directory).
    let token = request(&env.charts, "umbrella").await;
    let again = wait_for(&env.charts, "umbrella", WAIT, |o| {
        json(o)["status"]["lastHandledReconcileAt"] == json!(token)
    })
    .await;
    assert_eq!(artifact_of(&again).as_ref(), Some(&a));
    assert_eq!(
        cond(&again, meta::READY_CONDITION).unwrap().2,
        "packaged 'umbrella' chart with version '1.0.0'"
    );

    // A Helm repository name (`@stable`) needs Helm's local repository
    // file: refused with Flux's message, the last chart kept. (A new
    // version: the default strategy rebuilds on a version change.)
    repo.write("umbrella/Chart.yaml", &chart_yaml("1.0.1", "@stable"));
    repo.commit("a repository name");
    repo.push("main");
    request(&gits, "umbrella").await;
    let failed = wait_for(&env.charts, "umbrella", WAIT, |o| {
        failed_with(o, "DependencyBuildError")
    })
    .await;
    assert_eq!(
        cond(&failed, meta::READY_CONDITION).unwrap().2,
        "dependency build error: failed to add remote dependency 'hello': aliased repository dependency is not supported: @stable/"
    );
    assert_eq!(artifact_of(&failed), Some(a), "the last chart is kept");
}
