//! GitRepository: a cheap remote ref listing each interval, a shallow fetch
//! with gix only when the wanted ref moved, the tree archived (Flux's ignore
//! rules) into `gitrepository/<ns>/<name>/<commit>.tar.gz`. Scheduling,
//! status and events are the shared [`crate::reconciler`]'s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use sluice_api::meta::{
    self as flux, AUTHENTICATION_FAILED_REASON, GIT_OPERATION_FAILED_REASON, SUCCEEDED_REASON,
    URL_INVALID_REASON,
};
use sluice_runtime::Failure;

use crate::api::{self, Artifact, GitRepository, GitRepositorySpec, GitRepositoryStatus};
use crate::reconciler::{
    self, Ctx, SourceKind, Stored, fetch_failure, new_artifact, source_status, spec_accessors,
    spec_timeout, storage_failure,
};
use sluice_git::fetch::{self as git, Auth, FetchTarget, GitErrorKind, Scheme};
use sluice_git::refs::{self, Selected, Wanted};

/// Default timeout for Git operations (`spec.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest `spec.timeout` obeyed; a larger one is lowered to this, so
/// one GitRepository cannot hold a worker for hours.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);

source_status!(GitRepositoryStatus);

/// What a GitRepository records beside its artifact.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    ignore: Option<String>,
    sparse_checkout: Option<Vec<String>>,
}

impl SourceKind for GitRepository {
    type Status = GitRepositoryStatus;
    type Observed = Observed;
    const KIND: &'static str = api::KIND;

    spec_accessors!(GitRepositoryStatus);
    fn record(&self, status: &mut GitRepositoryStatus, observed: &Observed) {
        status.observed_ignore = observed.ignore.clone();
        status.observed_sparse_checkout = observed.sparse_checkout.clone();
    }
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: GitRepositoryStatus,
    ) -> Result<Stored<Observed>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// A success: the artifact, and the commit subject when it is new.
fn stored(
    artifact: Artifact,
    new_subject: Option<String>,
    spec: &GitRepositorySpec,
) -> Stored<Observed> {
    Stored {
        message: format!("stored artifact for revision '{}'", artifact.revision),
        artifact,
        reason: SUCCEEDED_REASON,
        event: new_subject.map(|subject| {
            (
                api::NEW_ARTIFACT_REASON,
                format!("stored artifact for commit '{subject}'"),
            )
        }),
        observed: Observed {
            ignore: spec.ignore.clone(),
            sparse_checkout: spec.sparse_checkout.clone().filter(|v| !v.is_empty()),
        },
    }
}

/// Reads the auth Secret the way Flux does; also gives its data (a GitHub App's keys).
async fn read_auth(
    client: &Client,
    ns: &str,
    secret_name: &str,
    scheme: Scheme,
) -> Result<(Auth, BTreeMap<String, Vec<u8>>), Failure> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = match secrets.get_opt(secret_name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!(
                    "failed to get secret '{ns}/{secret_name}': secrets \"{secret_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                format!("failed to get secret '{ns}/{secret_name}': {e}"),
            ));
        }
    };
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| data.get(k).map(|b| b.0.clone()).filter(|v| !v.is_empty());
    let get_s = |k: &str| get(k).map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut auth = Auth {
        ca_pem: get("ca.crt").or_else(|| get("caFile")),
        ..Auth::default()
    };
    match scheme {
        Scheme::Ssh => {
            auth.ssh_identity = get("identity");
            auth.known_hosts = get("known_hosts");
            if auth.ssh_identity.is_none() {
                return Err(fetch_failure(
                    AUTHENTICATION_FAILED_REASON,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'identity' is required"
                    ),
                ));
            }
            if auth.known_hosts.is_none() {
                return Err(fetch_failure(
                    AUTHENTICATION_FAILED_REASON,
                    format!(
                        "invalid 'ssh' auth option in secret '{ns}/{secret_name}': 'known_hosts' is required"
                    ),
                ));
            }
            // A passphrase-protected identity is opened with it (Flux's key).
            auth.ssh_passphrase = get_s("password");
        }
        _ => {
            auth.bearer_token = get_s("bearerToken");
            let username = get_s("username");
            let password = get_s("password");
            match (username, password) {
                (Some(u), Some(p)) => auth.basic = Some((u, p)),
                (Some(u), None) => auth.basic = Some((u, String::new())),
                (None, Some(_)) => {
                    return Err(fetch_failure(
                        AUTHENTICATION_FAILED_REASON,
                        format!(
                            "invalid 'http' auth option in secret '{ns}/{secret_name}': 'password' requires 'username' to be set"
                        ),
                    ));
                }
                (None, None) => {}
            }
        }
    }
    let data = data.into_iter().map(|(k, v)| (k, v.0)).collect();
    Ok((auth, data))
}

/// `spec.provider: github`: the Secret's GitHub App gives an installation token, the password
/// of user `x-access-token` (Flux's errors and reasons).
async fn github_app_auth(
    auth: &mut Auth,
    data: &BTreeMap<String, Vec<u8>>,
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    use sluice_runtime::github_app;
    if !github_app::has_app_data(data) {
        return Err(fetch_failure(
            flux::INVALID_PROVIDER_CONFIGURATION_REASON,
            "secretRef with github app data must be specified when provider is set to github",
        ));
    }
    let failed = |e: String| {
        fetch_failure(
            AUTHENTICATION_FAILED_REASON,
            format!("failed to configure authentication options: {e}"),
        )
    };
    let app = github_app::App::from_secret(data).map_err(failed)?;
    sluice_git::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &auth.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| failed(format!("invalid CA certificate: {e}")))?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    if let Some(p) = &auth.proxy {
        let mut proxy = reqwest::Proxy::all(p.url.as_str())
            .map_err(|e| failed(format!("invalid proxy address: {e}")))?;
        if let Some(user) = &p.username {
            proxy = proxy.basic_auth(user, p.password.as_deref().unwrap_or_default());
        }
        builder = builder.proxy(proxy);
    }
    let client = builder.build().map_err(|e| failed(e.to_string()))?;
    let token = app.token(&client, false).await.map_err(failed)?;
    auth.bearer_token = None;
    auth.basic = Some((github_app::ACCESS_TOKEN_USERNAME.to_string(), token.token));
    Ok(())
}

/// Checks the spec, lists the remote, and fetches/archives when the wanted
/// revision (or the archive configuration) changed.
async fn sync(
    obj: &GitRepository,
    ctx: &Ctx,
    old: &GitRepositoryStatus,
) -> Result<Stored<Observed>, Failure> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;

    // Spec checks that no retry can fix.
    let scheme = git::parse_url(&spec.url).map_err(|m| Failure::stalled(URL_INVALID_REASON, m))?;
    if spec.include.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.include is not supported by sluice",
        ));
    }
    if spec.recurse_submodules.unwrap_or(false) {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.recurseSubmodules is not supported by sluice",
        ));
    }
    if spec.verification.is_some() {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.verify (commit signature verification) is not supported by sluice",
        ));
    }
    if spec.proxy_secret_ref.is_some() && scheme == Scheme::Ssh {
        return Err(Failure::stalled(
            flux::UNSUPPORTED_FIELD_REASON,
            "spec.proxySecretRef is not supported by sluice for ssh:// URLs (only http and https)",
        ));
    }
    let provider = spec.provider();
    match provider {
        api::GitProvider::Generic => {}
        api::GitProvider::Github if spec.secret_ref.is_none() => {
            return Err(Failure::stalled(
                flux::INVALID_PROVIDER_CONFIGURATION_REASON,
                "secretRef with github app data must be specified when provider is set to github",
            ));
        }
        api::GitProvider::Github => {}
        _ => {
            return Err(Failure::stalled(
                flux::UNSUPPORTED_FIELD_REASON,
                format!(
                    "spec.provider '{}' is not supported by sluice (only 'generic' and 'github')",
                    provider.as_str()
                ),
            ));
        }
    }
    let timeout = spec_timeout(spec.timeout.as_deref(), spec.timeout(), DEFAULT_TIMEOUT)?;
    let wanted = Wanted::from_ref(spec.reference.as_ref());
    wanted
        .validate()
        .map_err(|m| Failure::stalled(api::INVALID_REF_REASON, m))?;

    let (mut auth, secret_data) = match &spec.secret_ref {
        Some(r) => read_auth(&ctx.client, &ns, &r.name, scheme).await?,
        None if scheme == Scheme::Ssh => {
            return Err(fetch_failure(
                AUTHENTICATION_FAILED_REASON,
                "ssh URLs need spec.secretRef with 'identity' and 'known_hosts'",
            ));
        }
        None => (Auth::default(), BTreeMap::new()),
    };
    if let Some(r) = &spec.proxy_secret_ref {
        auth.proxy = Some(
            crate::auth::proxy(
                &ctx.client,
                &ns,
                &r.name,
                "failed to configure proxy options",
            )
            .await?,
        );
    }
    if provider == api::GitProvider::Github {
        github_app_auth(&mut auth, &secret_data, timeout).await?;
    } else if sluice_runtime::github_app::has_app_data(&secret_data) {
        return Err(fetch_failure(
            flux::INVALID_PROVIDER_CONFIGURATION_REASON,
            format!(
                "secretRef '{ns}/{}' has github app data but provider is not set to github",
                spec.secret_ref
                    .as_ref()
                    .map(|r| r.name.as_str())
                    .unwrap_or_default()
            ),
        ));
    }
    let url_shown = git::redact_url(&spec.url);
    let work = git::work_dir(ctx.storage.root());

    // 1. The cheap remote listing.
    let selected: Selected = match &wanted {
        Wanted::Commit { branch: None, sha } => refs::select(&wanted, &[]).map_err(|e| {
            fetch_failure(
                GIT_OPERATION_FAILED_REASON,
                format!("invalid commit '{sha}': {e}"),
            )
        })?,
        _ => {
            let prefixes = wanted.listing_prefixes();
            let (url, a, w) = (spec.url.clone(), auth.clone(), work.clone());
            let listed = blocking(timeout, move || {
                git::ls_refs(&w, &url, &a, &prefixes, timeout)
            })
            .await;
            let remote_refs = listed.map_err(|e| git_failure(e, &auth))?;
            refs::select(&wanted, &remote_refs).map_err(|e| {
                fetch_failure(
                    GIT_OPERATION_FAILED_REASON,
                    format!("failed to checkout and determine revision: unable to clone '{url_shown}': {e}"),
                )
            })?
        }
    };

    // 2. Unchanged: keep the artifact, no fetch, no write.
    if let Some(a) = &old.artifact
        && a.revision == selected.revision
        && old.observed_ignore == spec.ignore
        && old.observed_sparse_checkout == spec.sparse_checkout.clone().filter(|v| !v.is_empty())
        && ctx.storage.exists(a)
    {
        return Ok(stored(a.clone(), None, spec));
    }

    // 3. Fetch, archive, store.
    let target = match (&wanted, &selected.ref_name) {
        (Wanted::Commit { sha, branch }, _) => FetchTarget::Commit {
            sha: sha.clone(),
            branch: branch.clone(),
        },
        (_, Some(r)) => FetchTarget::Ref(r.clone()),
        (_, None) => {
            return Err(fetch_failure(
                GIT_OPERATION_FAILED_REASON,
                "no ref to fetch",
            ));
        }
    };
    let storage = ctx.storage.clone();
    let (url, a, w) = (spec.url.clone(), auth.clone(), work.clone());
    let (ns2, name2) = (ns.clone(), name.clone());
    let ignore = spec.ignore.clone();
    let sparse = spec.sparse_checkout.clone().unwrap_or_default();
    let wanted2 = wanted.clone();
    let selected2 = selected.clone();
    let written = blocking(
        timeout,
        move || -> Result<(crate::storage::Written, String, String), StoreError> {
            let fetched = git::fetch(&w, &url, &a, &target, timeout).map_err(StoreError::Git)?;
            let commit_hex = fetched.commit.to_hex().to_string();
            // The ref may have moved between listing and fetch: report what was fetched.
            let revision = match &wanted2 {
                Wanted::Commit { .. } => selected2.revision.clone(),
                _ if commit_hex == selected2.commit => selected2.revision.clone(),
                _ => selected2.revision.replace(&selected2.commit, &commit_hex),
            };
            let subject = fetched
                .repo
                .find_commit(fetched.commit)
                .ok()
                .and_then(|c| c.message().ok().map(|m| m.summary().to_string()))
                .unwrap_or_default();
            let file = format!("{commit_hex}.tar.gz");
            let written =
                storage.write_artifact::<StoreError>(api::KIND, &ns2, &name2, &file, |out| {
                    git::archive_commit(
                        &fetched.repo,
                        fetched.commit,
                        ignore.as_deref(),
                        &sparse,
                        out,
                    )
                    .map_err(StoreError::Git)?;
                    Ok(())
                })?;
            Ok((written, revision, subject))
        },
    )
    .await;
    let (written, revision, subject) = match written {
        Ok(v) => v,
        Err(StoreError::Git(e)) => return Err(git_failure(e, &auth)),
        Err(StoreError::Io(e)) => {
            return Err(storage_failure(format!("failed to store artifact: {e}")));
        }
    };
    let artifact = new_artifact(ctx, api::KIND, &ns, &name, written, revision, None);
    Ok(stored(artifact, Some(subject), spec))
}

#[derive(Debug)]
enum StoreError {
    Git(git::GitError),
    Io(std::io::Error),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<git::GitError> for StoreError {
    fn from(e: git::GitError) -> Self {
        StoreError::Git(e)
    }
}

fn git_failure(e: git::GitError, auth: &Auth) -> Failure {
    let message = git::redact_url(&auth.scrub(&e.message));
    match e.kind {
        GitErrorKind::Auth => fetch_failure(AUTHENTICATION_FAILED_REASON, message),
        GitErrorKind::Operation => fetch_failure(GIT_OPERATION_FAILED_REASON, message),
    }
}

/// Runs blocking Git work off the async runtime, bounded by `timeout`.
async fn blocking<T, E>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<git::GitError>,
{
    reconciler::blocking(
        timeout,
        |message| {
            E::from(git::GitError {
                kind: GitErrorKind::Operation,
                message: format!("git {message}"),
            })
        },
        f,
    )
    .await
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::{conclude, policy};
    use sluice_api::meta::{
        ARTIFACT_IN_STORAGE_CONDITION, FETCH_FAILED_CONDITION, STORAGE_OPERATION_FAILED_CONDITION,
        find_condition, is_condition_true,
    };
    use sluice_runtime::History;

    fn repo() -> GitRepository {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "repo", "namespace": "flux-system", "generation": 2},
            "spec": {"url": "https://git.example/repo.git", "interval": "1m"},
        }))
        .unwrap()
    }

    fn artifact(rev: &str) -> Artifact {
        serde_json::from_value(serde_json::json!({
            "path": "gitrepository/flux-system/repo/a.tar.gz",
            "url": "http://x/a.tar.gz",
            "revision": rev,
            "digest": "sha256:0",
            "lastUpdateTime": "2026-12-02T00:00:00Z",
        }))
        .unwrap()
    }

    fn types(s: &GitRepositoryStatus) -> Vec<&str> {
        s.conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect()
    }

    fn run(
        old: &GitRepositoryStatus,
        r: Result<Stored<Observed>, Failure>,
        failures: u32,
    ) -> (GitRepositoryStatus, sluice_runtime::Decision) {
        conclude(
            &repo(),
            old,
            &r,
            &policy(Duration::from_secs(60), GitRepository::CLEARED_ON_SUCCESS),
            History {
                consecutive_failures: failures,
            },
        )
    }

    #[test]
    fn fetch_failures_set_fetch_failed_and_back_off_then_a_success_clears_them() {
        let (failed, d) = run(
            &GitRepositoryStatus::default(),
            Err(fetch_failure(AUTHENTICATION_FAILED_REASON, "denied")),
            0,
        );
        assert_eq!(
            types(&failed),
            [
                flux::READY_CONDITION,
                flux::RECONCILING_CONDITION,
                FETCH_FAILED_CONDITION
            ]
        );
        assert_eq!(d.requeue, Duration::from_millis(1500));
        assert_eq!(d.events[0].reason, AUTHENTICATION_FAILED_REASON);
        let (_, d) = run(
            &failed,
            Err(fetch_failure(AUTHENTICATION_FAILED_REASON, "denied")),
            3,
        );
        assert_eq!(d.requeue, Duration::from_secs(12));
        assert_eq!(
            d.events.len(),
            1,
            "every failure is told (the recorder folds them)"
        );

        let ok = stored(
            artifact("main@sha1:abc"),
            Some("first commit".into()),
            &repo().spec,
        );
        let (stored, d) = run(&failed, Ok(ok), 0);
        assert_eq!(
            types(&stored),
            [flux::READY_CONDITION, ARTIFACT_IN_STORAGE_CONDITION]
        );
        let ready =
            find_condition(stored.conditions.as_deref().unwrap(), flux::READY_CONDITION).unwrap();
        assert_eq!(
            ready.message,
            "stored artifact for revision 'main@sha1:abc'"
        );
        assert_eq!(stored.observed_generation, Some(2));
        assert_eq!(d.events[0].reason, api::NEW_ARTIFACT_REASON);
        assert_eq!(
            d.events[0].message,
            "stored artifact for commit 'first commit'"
        );
        assert_eq!(d.requeue, Duration::from_secs(60));
    }

    #[test]
    fn a_storage_failure_replaces_fetch_failed_and_keeps_the_artifact() {
        let old = GitRepositoryStatus {
            artifact: Some(artifact("main@sha1:abc")),
            conditions: Some(vec![flux::new_condition(
                FETCH_FAILED_CONDITION,
                "True",
                GIT_OPERATION_FAILED_REASON,
                "x",
                Some(2),
            )]),
            ..Default::default()
        };
        let (s, _) = run(&old, Err(storage_failure("disk full")), 0);
        let c = s.conditions.clone().unwrap();
        assert!(is_condition_true(&c, STORAGE_OPERATION_FAILED_CONDITION));
        assert!(find_condition(&c, FETCH_FAILED_CONDITION).is_none());
        assert!(s.artifact.is_some());
    }

    #[test]
    fn stalled_failures_record_the_generation_and_wait_an_interval() {
        let (s, d) = run(
            &GitRepositoryStatus::default(),
            Err(Failure::stalled(URL_INVALID_REASON, "bad url")),
            5,
        );
        assert_eq!(types(&s), [flux::READY_CONDITION, flux::STALLED_CONDITION]);
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(d.requeue, Duration::from_secs(60));
    }
}
