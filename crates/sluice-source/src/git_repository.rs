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
use sluice_api::source::GitVerificationMode;
use sluice_git::fetch::{self as git, Auth, FetchTarget, GitErrorKind, Scheme};
use sluice_git::refs::{self, Selected, Wanted};
use sluice_git::signature::{self, TrustedKeys};

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
    recurse_submodules: bool,
    /// `spec.include` and the artifacts it took, in its order.
    include: Vec<api::GitRepositoryInclude>,
    included: Vec<Artifact>,
    verification: Verification,
}

/// What became of `spec.verify` in a successful run.
#[derive(Clone, Debug, Default)]
enum Verification {
    /// No `spec.verify`: `SourceVerified` and the observed mode are removed.
    #[default]
    NotConfigured,
    /// Nothing was fetched (the revision did not move and the mode did not
    /// widen): what was verified before stands.
    Unchanged,
    /// Verified now: `SourceVerified=True` with Flux's message.
    Verified {
        mode: GitVerificationMode,
        message: String,
    },
}

/// The reasons of a failed `spec.verify`, which also set
/// `SourceVerified=False`.
const VERIFICATION_REASONS: [&str; 5] = [
    "VerificationError",
    "InvalidVerificationMode",
    "InvalidGitObject",
    "InvalidTagSignature",
    "InvalidCommitSignature",
];

impl SourceKind for GitRepository {
    type Status = GitRepositoryStatus;
    type Observed = Observed;
    const KIND: &'static str = api::KIND;

    spec_accessors!(GitRepositoryStatus);
    fn record(&self, status: &mut GitRepositoryStatus, observed: &Observed) {
        status.observed_ignore = observed.ignore.clone();
        status.observed_sparse_checkout = observed.sparse_checkout.clone();
        // Flux omits it when false.
        status.observed_recurse_submodules = observed.recurse_submodules.then_some(true);
        status.observed_include = (!observed.include.is_empty()).then(|| observed.include.clone());
        status.included_artifacts =
            (!observed.included.is_empty()).then(|| observed.included.clone());
        match &observed.verification {
            Verification::NotConfigured => status.source_verification_mode = None,
            Verification::Unchanged => {}
            Verification::Verified { mode, .. } => {
                status.source_verification_mode = Some(mode.clone());
            }
        }
    }
    fn conditions(
        &self,
        conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        result: &Result<Stored<Observed>, Failure>,
        generation: Option<i64>,
    ) {
        if !matches!(result, Err(f) if f.condition == Some(flux::INCLUDE_UNAVAILABLE_CONDITION)) {
            flux::remove_condition(conditions, flux::INCLUDE_UNAVAILABLE_CONDITION);
        }
        let (status, reason, message) = match result {
            Ok(ok) => match &ok.observed.verification {
                Verification::NotConfigured => {
                    flux::remove_condition(conditions, flux::SOURCE_VERIFIED_CONDITION);
                    return;
                }
                Verification::Unchanged => return,
                Verification::Verified { message, .. } => {
                    (flux::CONDITION_TRUE, SUCCEEDED_REASON, message.as_str())
                }
            },
            Err(f) if VERIFICATION_REASONS.contains(&f.reason.as_ref()) => {
                (flux::CONDITION_FALSE, f.reason.as_ref(), f.message.as_str())
            }
            Err(_) => return,
        };
        flux::set_condition(
            conditions,
            flux::new_condition(
                flux::SOURCE_VERIFIED_CONDITION,
                status,
                reason,
                message,
                generation,
            ),
        );
    }
    /// A new revision of an included GitRepository makes the object due
    /// (the revision, not the digest, as Flux: an includer that includes
    /// itself, or two that include each other, do not rebuild forever).
    async fn fingerprint_extra(obj: &Arc<Self>, ctx: &Arc<Ctx>) -> Vec<String> {
        let Some(includes) = obj.spec.include.as_ref().filter(|v| !v.is_empty()) else {
            return Vec::new();
        };
        let api: Api<GitRepository> =
            Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        let mut out = Vec::with_capacity(includes.len());
        for inc in includes {
            let revision = api
                .get_opt(&inc.repository.name)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.status.and_then(|s| s.artifact))
                .map(|a| a.revision);
            out.push(revision.unwrap_or_default());
        }
        out
    }
    async fn sync(
        obj: Arc<Self>,
        ctx: Arc<Ctx>,
        old: GitRepositoryStatus,
    ) -> Result<Stored<Observed>, Failure> {
        sync(&obj, &ctx, &old).await
    }
}

/// The GitRepository controller: its own watch, which also wakes the
/// GitRepositories that include a changed one (`spec.include`).
pub(crate) fn controller(
    scope: &sluice_runtime::WatchScope,
    api: Api<GitRepository>,
) -> kube::runtime::Controller<GitRepository> {
    let controller = kube::runtime::Controller::new(api.clone(), scope.watcher_config());
    let store = controller.store();
    controller.watches(
        api,
        scope.watcher_config(),
        move |changed: GitRepository| {
            let (ns, name) = (changed.namespace(), changed.name_any());
            store
                .state()
                .into_iter()
                .filter(|r| {
                    r.namespace() == ns
                        && r.spec
                            .include
                            .iter()
                            .flatten()
                            .any(|i| i.repository.name == name)
                })
                .map(|r| kube::runtime::reflector::ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        },
    )
}

/// A success: the artifact, and the commit subject when it is new.
fn stored(
    artifact: Artifact,
    new_subject: Option<String>,
    spec: &GitRepositorySpec,
    included: Vec<Artifact>,
    verification: Verification,
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
            recurse_submodules: spec.recurse_submodules.unwrap_or(false),
            include: spec.include.clone().unwrap_or_default(),
            included,
            verification,
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
    let includes = spec.include.clone().unwrap_or_default();
    let included = included_artifacts(ctx, &ns, &includes).await?;
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
        && old.observed_recurse_submodules.unwrap_or(false)
            == spec.recurse_submodules.unwrap_or(false)
        && old.observed_include.clone().unwrap_or_default() == includes
        && same_artifacts(
            old.included_artifacts.as_deref().unwrap_or_default(),
            &included,
        )
        && ctx.storage.exists(a)
        && !requires_verification(spec, old)
    {
        let verification = match spec.verification {
            Some(_) => Verification::Unchanged,
            None => Verification::NotConfigured,
        };
        return Ok(stored(a.clone(), None, spec, included, verification));
    }
    // The trusted keys are read only when something is to be verified.
    let verify = match &spec.verification {
        Some(v) => Some((
            v.mode(),
            trusted_keys(&ctx.client, &ns, &v.secret_ref.name).await?,
        )),
        None => None,
    };
    let tag_name = selected
        .ref_name
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .map(str::to_string);
    if let Some((mode, _)) = &verify
        && verifies_tag(mode)
        && tag_name.is_none()
    {
        return Err(Failure::stalled(
            "InvalidVerificationMode",
            "cannot verify tag object's signature if a tag reference is not specified",
        ));
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
    let recurse = spec.recurse_submodules.unwrap_or(false);
    let sources: Vec<(api::GitRepositoryInclude, std::path::PathBuf, String)> = includes
        .iter()
        .zip(&included)
        .map(|(inc, a)| {
            let path = ctx.storage.local_path(a).unwrap_or_default();
            (inc.clone(), path, a.digest.clone())
        })
        .collect();
    let selected2 = selected.clone();
    let written = blocking(
        timeout,
        move || -> Result<(crate::storage::Written, String, String, Verification), StoreError> {
            let fetched = git::fetch(&w, &url, &a, &target, timeout).map_err(StoreError::Git)?;
            // Verified before anything is stored.
            let verification = match &verify {
                Some((mode, keys)) => verify_signatures(&fetched, tag_name.as_deref(), mode, keys)
                    .map_err(StoreError::Verify)?,
                None => Verification::NotConfigured,
            };
            let submodules = if recurse {
                git::fetch_submodules(&w, &url, &a, &fetched, timeout).map_err(StoreError::Git)?
            } else {
                Vec::new()
            };
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
            // With includes, the tree is checked out and the included
            // artifacts copied in before the directory is archived (Flux's
            // order: the ignore rules apply to them too).
            let tree = if sources.is_empty() {
                None
            } else {
                Some(with_includes(
                    &storage,
                    &fetched,
                    &submodules,
                    &sparse,
                    &sources,
                )?)
            };
            let written =
                storage.write_artifact::<StoreError>(api::KIND, &ns2, &name2, &file, |out| {
                    match &tree {
                        Some(dir) => {
                            sluice_git::archive::archive_dir(
                                &dir.path().join("tree"),
                                ignore.as_deref(),
                                out,
                            )?;
                        }
                        None => {
                            git::archive_commit(
                                &fetched.repo,
                                fetched.commit,
                                &submodules,
                                ignore.as_deref(),
                                &sparse,
                                out,
                            )
                            .map_err(StoreError::Git)?;
                        }
                    }
                    Ok(())
                })?;
            Ok((written, revision, subject, verification))
        },
    )
    .await;
    let (written, revision, subject, verification) = match written {
        Ok(v) => v,
        Err(StoreError::Git(e)) => return Err(git_failure(e, &auth)),
        Err(StoreError::Verify(f)) | Err(StoreError::Include(f)) => return Err(f),
        Err(StoreError::Io(e)) => {
            return Err(storage_failure(format!("failed to store artifact: {e}")));
        }
    };
    let artifact = new_artifact(ctx, api::KIND, &ns, &name, written, revision, None);
    Ok(stored(
        artifact,
        Some(subject),
        spec,
        included,
        verification,
    ))
}

/// The trusted keys of `spec.verify.secretRef` (a failure to read them is
/// Flux's `VerificationError`, retried).
async fn trusted_keys(client: &Client, ns: &str, name: &str) -> Result<TrustedKeys, Failure> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let failed = |m: String| {
        Failure::new(
            "VerificationError",
            format!("public keys secret error: {m}"),
        )
    };
    let secret = match secrets.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(failed(format!("secrets \"{name}\" not found"))),
        Err(e) => return Err(failed(e.to_string())),
    };
    let data = secret.data.unwrap_or_default();
    Ok(TrustedKeys::from_entries(
        data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())),
    ))
}

fn verifies_tag(mode: &GitVerificationMode) -> bool {
    matches!(
        mode,
        GitVerificationMode::Tag | GitVerificationMode::TagAndHead
    )
}

fn verifies_head(mode: &GitVerificationMode) -> bool {
    !matches!(mode, GitVerificationMode::Tag)
}

/// Flux's `requiresVerification`: a fetch is needed although the revision
/// did not move, because nothing was verified yet or the mode now covers
/// an object it did not.
fn requires_verification(spec: &GitRepositorySpec, old: &GitRepositoryStatus) -> bool {
    let Some(v) = &spec.verification else {
        return false;
    };
    let Some(observed) = old.source_verification_mode.as_ref().map(|m| m.effective()) else {
        return true;
    };
    let mode = v.mode();
    (verifies_tag(&mode) && !verifies_tag(&observed))
        || (verifies_head(&mode) && !verifies_head(&observed))
}

/// Verifies the fetched tag and/or commit as `mode` asks: Flux's
/// `verifySignature`, its reasons and messages.
fn verify_signatures(
    fetched: &git::Fetched,
    tag_name: Option<&str>,
    mode: &GitVerificationMode,
    keys: &TrustedKeys,
) -> Result<Verification, Failure> {
    let mut message = String::from("verified signature of");
    if verifies_tag(mode) {
        let (Some(name), Some(target)) = (tag_name, fetched.ref_target()) else {
            return Err(Failure::stalled(
                "InvalidVerificationMode",
                "cannot verify tag object's signature if a tag reference is not specified",
            ));
        };
        let tag = signature::tag(&fetched.repo, name, target)
            .map_err(|m| Failure::new("InvalidGitObject", m))?;
        if tag.signed.signature.is_empty() {
            return Err(Failure::new(
                "InvalidGitObject",
                format!("cannot verify signature of tag '{tag}' since it is not signed"),
            ));
        }
        let key = signature::verify(&tag.signed, "tag", keys).map_err(|e| {
            Failure::new(
                "InvalidTagSignature",
                format!("signature verification of tag '{tag}' failed: {e}"),
            )
        })?;
        message.push_str(&format!("\n\t- tag '{tag}' with key '{key}'"));
    }
    if verifies_head(mode) {
        let commit = fetched.commit;
        let signed = signature::commit(&fetched.repo, commit)
            .map_err(|m| Failure::new("InvalidGitObject", m))?;
        let key = signature::verify(&signed, "commit", keys).map_err(|e| {
            Failure::new(
                "InvalidCommitSignature",
                format!("signature verification of commit '{commit}' failed: {e}"),
            )
        })?;
        message.push_str(&format!("\n\t- commit '{commit}' with key '{key}'"));
    }
    Ok(Verification::Verified {
        mode: mode.clone(),
        message,
    })
}

#[derive(Debug)]
enum StoreError {
    Git(git::GitError),
    Verify(Failure),
    Include(Failure),
    Io(std::io::Error),
}

/// The artifacts of `spec.include`, in its order (Flux's `fetchIncludes`):
/// a GitRepository that is missing or has no artifact yet is waited for,
/// with `IncludeUnavailable`.
async fn included_artifacts(
    ctx: &Ctx,
    ns: &str,
    includes: &[api::GitRepositoryInclude],
) -> Result<Vec<Artifact>, Failure> {
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::with_capacity(includes.len());
    for inc in includes {
        let name = &inc.repository.name;
        let unavailable = |reason: &'static str, m: String| {
            Failure::new(reason, m).with_condition(flux::INCLUDE_UNAVAILABLE_CONDITION)
        };
        let repo = match api.get_opt(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(unavailable(
                    "NotFound",
                    format!(
                        "could not get resource for include '{name}': gitrepositories.{} \"{name}\" not found",
                        api::GROUP
                    ),
                ));
            }
            Err(e) => {
                return Err(unavailable(
                    "NotFound",
                    format!("could not get resource for include '{name}': {e}"),
                ));
            }
        };
        match repo
            .status
            .and_then(|s| s.artifact)
            .filter(|a| ctx.storage.exists(a))
        {
            Some(a) => out.push(a),
            None => {
                return Err(unavailable(
                    "NoArtifact",
                    format!("no artifact available for include '{name}'"),
                ));
            }
        }
    }
    Ok(out)
}

/// Whether the included artifacts are those recorded: Flux's
/// `artifactSet.Diff`, by revision (a digest that moved without a new
/// revision, as an includer's own does, is no change).
fn same_artifacts(old: &[Artifact], new: &[Artifact]) -> bool {
    old.len() == new.len() && old.iter().zip(new).all(|(a, b)| a.revision == b.revision)
}

/// `root/path` as Go's `securejoin` makes it: `..` never climbs above
/// `root` (it stays there), `.` and empty segments drop out.
pub(crate) fn clamped_join(root: &std::path::Path, path: &str) -> std::path::PathBuf {
    let mut segs: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(segs);
    out
}

/// The fetched tree checked out under `<work>/tree`, with each include's
/// artifact (its `fromPath`) copied to its `toPath` over what is there
/// (Flux's `CopyToPath`). Paths stay inside the tree and the artifact.
fn with_includes(
    storage: &crate::storage::Storage,
    fetched: &git::Fetched,
    submodules: &[git::Submodule],
    sparse: &[String],
    sources: &[(api::GitRepositoryInclude, std::path::PathBuf, String)],
) -> Result<tempfile::TempDir, StoreError> {
    let work = tempfile::Builder::new()
        .prefix(".include-")
        .tempdir_in(storage.root())?;
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree)?;
    git::checkout_commit(&fetched.repo, fetched.commit, submodules, sparse, &tree)
        .map_err(StoreError::Git)?;
    for (n, (inc, artifact, digest)) in sources.iter().enumerate() {
        let name = &inc.repository.name;
        let from_path = inc.from_path.as_deref().unwrap_or_default();
        let to_path = inc.to_path();
        let copy_failed = |m: String| {
            StoreError::Include(
                Failure::new(
                    "CopyFailure",
                    format!("failed to copy '{name}' include from {from_path} to {to_path}: {m}"),
                )
                .with_condition(flux::STORAGE_OPERATION_FAILED_CONDITION),
            )
        };
        let unpacked = work.path().join(format!("include-{n}"));
        std::fs::create_dir(&unpacked)?;
        sluice_git::archive::unpack_file(artifact, digest, &unpacked)
            .map_err(|e| copy_failed(format!("{e:#}")))?;
        copy_over(
            &clamped_join(&unpacked, from_path),
            &clamped_join(&tree, to_path),
        )
        .map_err(|e| copy_failed(e.to_string()))?;
    }
    Ok(work)
}

/// Copies `from` (a file or a directory) to `to`, merging into an existing
/// directory and replacing files; symlinks are not followed.
fn copy_over(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_dir() {
        if std::fs::symlink_metadata(to).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(to)?;
        }
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_over(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.is_file() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(to)?;
        }
        std::fs::copy(from, to)?;
    }
    Ok(())
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

    #[test]
    fn an_unmoved_revision_is_fetched_again_only_when_the_mode_covers_more() {
        let with_mode = |mode: Option<&str>| -> GitRepositorySpec {
            let mut v = serde_json::json!({"url": "https://git.example/r", "interval": "1m"});
            if let Some(m) = mode {
                v["verify"] = serde_json::json!({"mode": m, "secretRef": {"name": "keys"}});
            }
            serde_json::from_value(v).unwrap()
        };
        let observed = |mode: Option<GitVerificationMode>| GitRepositoryStatus {
            source_verification_mode: mode,
            ..Default::default()
        };
        use GitVerificationMode::*;
        assert!(!requires_verification(&with_mode(None), &observed(None)));
        assert!(requires_verification(
            &with_mode(Some("HEAD")),
            &observed(None)
        ));
        assert!(!requires_verification(
            &with_mode(Some("HEAD")),
            &observed(Some(Head))
        ));
        assert!(!requires_verification(
            &with_mode(Some("head")),
            &observed(Some(Head))
        ));
        assert!(!requires_verification(
            &with_mode(Some("HEAD")),
            &observed(Some(HeadLegacy))
        ));
        assert!(requires_verification(
            &with_mode(Some("Tag")),
            &observed(Some(Head))
        ));
        assert!(requires_verification(
            &with_mode(Some("TagAndHEAD")),
            &observed(Some(Head))
        ));
        assert!(requires_verification(
            &with_mode(Some("HEAD")),
            &observed(Some(Tag))
        ));
        assert!(!requires_verification(
            &with_mode(Some("Tag")),
            &observed(Some(TagAndHead))
        ));
        assert!(!requires_verification(
            &with_mode(Some("HEAD")),
            &observed(Some(TagAndHead))
        ));
    }

    #[test]
    fn included_artifacts_compare_by_revision_and_paths_stay_inside() {
        let mut moved = artifact("main@sha1:a");
        moved.digest = "sha256:other".into();
        // An includer's own digest moves with every build: no change.
        assert!(same_artifacts(&[artifact("main@sha1:a")], &[moved]));
        assert!(!same_artifacts(
            &[artifact("main@sha1:a")],
            &[artifact("main@sha1:b")]
        ));
        assert!(!same_artifacts(&[], &[artifact("main@sha1:a")]));
        let root = std::path::Path::new("/w/tree");
        assert_eq!(clamped_join(root, "vendor/x"), root.join("vendor/x"));
        assert_eq!(clamped_join(root, "../../etc"), root.join("etc"));
        assert_eq!(clamped_join(root, "/abs/./p/"), root.join("abs/p"));
        assert_eq!(clamped_join(root, ""), root.to_path_buf());
    }

    #[test]
    fn source_verified_follows_the_run() {
        let gr = repo();
        let ok = |verification: Verification| -> Result<Stored<Observed>, Failure> {
            Ok(stored(
                artifact("main@sha1:a"),
                None,
                &gr.spec,
                Vec::new(),
                verification,
            ))
        };
        let mut conditions = Vec::new();
        let verified = Verification::Verified {
            mode: GitVerificationMode::Head,
            message: "verified signature of\n\t- commit 'a' with key 'K'".into(),
        };
        gr.conditions(&mut conditions, &ok(verified), Some(2));
        let c = flux::find_condition(&conditions, flux::SOURCE_VERIFIED_CONDITION).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Succeeded")
        );
        gr.conditions(&mut conditions, &ok(Verification::Unchanged), Some(2));
        assert!(flux::find_condition(&conditions, flux::SOURCE_VERIFIED_CONDITION).is_some());
        let bad = Err(Failure::new("InvalidCommitSignature", "no matching key"));
        gr.conditions(&mut conditions, &bad, Some(3));
        let c = flux::find_condition(&conditions, flux::SOURCE_VERIFIED_CONDITION).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InvalidCommitSignature")
        );
        // Another failure leaves it as it was.
        gr.conditions(
            &mut conditions,
            &Err(Failure::new("GitOperationFailed", "x")),
            Some(3),
        );
        assert_eq!(
            flux::find_condition(&conditions, flux::SOURCE_VERIFIED_CONDITION)
                .unwrap()
                .reason,
            "InvalidCommitSignature"
        );
        gr.conditions(&mut conditions, &ok(Verification::NotConfigured), Some(4));
        assert!(flux::find_condition(&conditions, flux::SOURCE_VERIFIED_CONDITION).is_none());
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
            Vec::new(),
            Verification::NotConfigured,
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
