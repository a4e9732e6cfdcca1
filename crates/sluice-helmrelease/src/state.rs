//! Where a release stands against its HelmRelease, and what to do about it: the decisions of
//! helm-controller's `DetermineReleaseState` and `actionForState` (v1.6.4), as data.
//!
//! [`determine`] reads the last release in storage, the snapshot history in the status and the
//! desired chart and values, and says whether the release is absent, locked by an interrupted
//! operation, made by someone else, out of sync, failed, untested or in sync. [`next_action`]
//! turns that into the one action to run next (with Flux's retry, remediation and force-request
//! rules) and makes the status edits helm-controller makes on the way (history truncation, the
//! `Released` condition after a remediation). Drift detection needs the cluster: the controller
//! runs it only when [`determine`] says [`State::InSync`] and the mode asks for it, and turns the
//! state into [`State::Drifted`] when the cluster differs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::HelmRelease;
use sluice_api::helm_release::{
    self as api, DriftDetectionMode, HelmReleaseStatus, RemediationStrategy, Snapshot,
    TEST_PHASE_FAILED,
};
use sluice_api::meta;
use sluice_helm::flux;
use sluice_helm::release::{Release, Status};
use sluice_kustomize::yaml::Map as YMap;

use crate::digests;

/// The state of a release (helm-controller's `ReleaseStatus`), with the reason it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// No release, or an uninstalled one.
    Absent(String),
    /// The last release is `pending-*`: an operation was interrupted.
    Locked(String),
    /// A release exists that this HelmRelease's history does not account for.
    Unmanaged(String),
    /// The chart, values, post-renderers or common metadata changed.
    OutOfSync(String),
    /// In sync, but the cluster differs from the manifest (set by the controller after its diff).
    Drifted(String),
    /// In sync, but the tests that should have run did not.
    Untested,
    /// In sync.
    InSync,
    /// The last release failed (or failed its tests).
    Failed(String),
}

impl State {
    /// helm-controller's name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            State::Absent(_) => "Absent",
            State::Locked(_) => "Locked",
            State::Unmanaged(_) => "Unmanaged",
            State::OutOfSync(_) => "OutOfSync",
            State::Drifted(_) => "Drifted",
            State::Untested => "Untested",
            State::InSync => "InSync",
            State::Failed(_) => "Failed",
        }
    }
}

/// Why the state could not be determined.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The last release has a status no state accounts for.
    #[error("unable to determine state for release with status '{0}'")]
    UnknownStatus(String),
    /// The snapshot could not be checked against the release.
    #[error("failed to verify release object: {0}")]
    Verify(String),
}

/// The desired chart and values, and the last release in storage.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The last release of the (shortened) release name in the storage namespace.
    pub last: Option<&'a Release>,
    /// The chart's `Chart.yaml` name and version.
    pub chart_name: &'a str,
    pub chart_version: &'a str,
    /// The composed values (`valuesFrom`, then `values`).
    pub values: &'a YMap,
}

/// helm-controller's `ErrReleaseDigest` text.
pub const RELEASE_DIGEST_ERROR: &str = "release digest verification error";
/// helm-controller's `ErrReleaseNotObserved` text.
pub const RELEASE_NOT_OBSERVED: &str = "release not observed to be made for object";

/// `VerifyReleaseObject`: whether `snapshot` describes `release` (its digest matches the
/// release's observation). Snapshots of another format version are not checked.
pub fn verify_snapshot(snapshot: &Snapshot, release: &Release) -> Result<(), String> {
    if snapshot.api_version.as_deref() != Some(flux::SNAPSHOT_API_VERSION) {
        return Ok(());
    }
    let Some((algorithm, hex)) = snapshot.digest.split_once(':') else {
        return Err(RELEASE_DIGEST_ERROR.into());
    };
    if algorithm != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RELEASE_DIGEST_ERROR.into());
    }
    let oci = snapshot.oci_digest.as_deref().unwrap_or_default();
    let observed = flux::release_digest(release, oci).map_err(|e| e.to_string())?;
    if observed != snapshot.digest {
        return Err(RELEASE_NOT_OBSERVED.into());
    }
    Ok(())
}

/// `DetermineReleaseState`, without the drift check (see the module's notes).
pub fn determine(hr: &HelmRelease, facts: Facts<'_>) -> Result<State, StateError> {
    let Some(last) = facts.last else {
        return Ok(State::Absent("no release in storage for object".into()));
    };
    let status = last.status();
    if status.is_pending() {
        return Ok(State::Locked(format!(
            "release with status '{}'",
            status.as_str()
        )));
    }
    let empty = HelmReleaseStatus::default();
    let hr_status = hr.status.as_ref().unwrap_or(&empty);
    let Some(current) = hr_status.latest() else {
        if status == Status::Uninstalled {
            return Ok(State::Absent("found uninstalled release in storage".into()));
        }
        return Ok(State::Unmanaged("found existing release in storage".into()));
    };
    if let Err(reason) = verify_snapshot(current, last) {
        if reason == RELEASE_DIGEST_ERROR || reason == RELEASE_NOT_OBSERVED {
            return Ok(State::Unmanaged(reason));
        }
        return Err(StateError::Verify(reason));
    }
    match status {
        Status::Failed => Ok(State::Failed(String::new())),
        Status::Uninstalled => Ok(State::Absent("found uninstalled release in storage".into())),
        Status::Deployed => deployed(hr, hr_status, current, last, facts),
        other => Err(StateError::UnknownStatus(other.as_str().into())),
    }
}

fn deployed(
    hr: &HelmRelease,
    hr_status: &HelmReleaseStatus,
    current: &Snapshot,
    last: &Release,
    facts: Facts<'_>,
) -> Result<State, StateError> {
    let md = last.chart.as_ref().and_then(|c| c.metadata.as_ref());
    let (name, version) = md.map_or(("", ""), |m| (m.name.as_str(), m.version.as_str()));
    if name != facts.chart_name || version != facts.chart_version {
        return Ok(State::OutOfSync("release chart changed".into()));
    }
    if flux::config_digest(facts.values) != current.config_digest {
        return Ok(State::OutOfSync("release config values changed".into()));
    }
    if hr_status.observed_generation != hr.metadata.generation {
        let observed = |s: &Option<String>| s.clone().unwrap_or_default();
        if digests::post_renderers(hr.spec.post_renderers.as_deref())
            != observed(&hr_status.observed_post_renderers_digest)
        {
            return Ok(State::OutOfSync("postrenderers digest has changed".into()));
        }
        if digests::common_metadata(hr.spec.common_metadata.as_ref())
            != observed(&hr_status.observed_common_metadata_digest)
        {
            return Ok(State::OutOfSync(
                "common metadata digest has changed".into(),
            ));
        }
    }
    if hr.test_enabled() {
        if !current.has_been_tested() {
            return Ok(State::Untested);
        }
        if let Some(r) = hr.active_remediation()
            && !r.ignore_test_failures
            && current.has_test_in_phase(TEST_PHASE_FAILED)
        {
            return Ok(State::Failed("release has test in failed phase".into()));
        }
    }
    Ok(State::InSync)
}

/// The one action a state calls for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing: the release is as it should be.
    Nothing,
    /// Mark the interrupted (`pending-*`) release failed, so the next action may run.
    Unlock,
    /// Helm install.
    Install,
    /// Helm upgrade.
    Upgrade,
    /// Helm test.
    Test,
    /// Roll back to this snapshot's release (remediation).
    RollbackTo(Box<Snapshot>),
    /// Uninstall (remediation).
    UninstallRemediation,
    /// Correct the drift (the controller re-applies what differs).
    CorrectDrift,
}

/// Why no action may run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// Retries are spent: the HelmRelease is stalled until its spec, chart or values change,
    /// or a force or reset is requested.
    #[error("exceeded maximum retries: {0}")]
    RetriesExhausted(&'static str),
    /// Remediation by rollback has nothing to roll back to.
    #[error("missing target release for rollback: cannot remediate failed release")]
    MissingRollbackTarget,
    /// An unknown remediation strategy.
    #[error("unknown remediation strategy: {0}")]
    UnknownStrategy(String),
}

impl ActionError {
    /// Whether helm-controller treats it as terminal (Stalled, no retry until something
    /// changes).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ActionError::RetriesExhausted(_) | ActionError::MissingRollbackTarget
        )
    }
}

/// What [`next_action`] needs beyond the object: whether a force was requested
/// (`reconcile.fluxcd.io/forceAt` not yet handled), and for a rollback whether the
/// target snapshot's release is still in storage and verified.
pub struct Decide<'a> {
    pub force_requested: bool,
    /// Looks up the release a snapshot describes in storage and checks it against the snapshot
    /// ([`verify_snapshot`]).
    pub rollback_target: &'a (dyn Fn(&Snapshot) -> RollbackTarget + Sync),
}

/// What storage says of a rollback target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackTarget {
    /// In storage, and the snapshot describes it.
    Verified,
    /// Gone from storage or not as the snapshot says.
    Unverified,
}

const FMT_UPGRADE_SUCCESS: &str = "Helm upgrade succeeded for release";
const FMT_INSTALL_SUCCESS: &str = "Helm install succeeded for release";

fn success_message(prefix: &str, s: &Snapshot) -> String {
    format!(
        "{prefix} {} with chart {}",
        s.full_release_name(),
        s.versioned_chart_name()
    )
}

/// `actionForState`: the action for `state`, and the status edits helm-controller makes with it
/// (history truncated; `Remediated` replaced by `Released` once in sync again; `Released` set
/// back to success when a failure was cured by something else; `Drifted` cleared).
pub fn next_action(
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    state: &State,
    d: &Decide<'_>,
) -> Result<Action, ActionError> {
    let generation = hr.metadata.generation;
    let remediation = hr.active_remediation();
    let ignore_tests = remediation.as_ref().map_or_else(
        || hr.test().ignore_failures.unwrap_or(false),
        |r| r.ignore_test_failures,
    );
    match state {
        State::InSync => {
            if hr.active_retry_interval().is_some() {
                status.truncate_history_ignoring_previous();
            } else {
                status.truncate_history(ignore_tests);
            }
            if d.force_requested {
                return Ok(Action::Upgrade);
            }
            replace_remediated(status, generation);
            let conditions = status.conditions.as_deref().unwrap_or_default();
            let released = meta::find_condition(conditions, api::RELEASED_CONDITION);
            if !meta::is_ready(conditions) || released.is_none_or(|c| c.status != "True") {
                let cured = match released.map(|c| c.reason.as_str()) {
                    Some(api::INSTALL_FAILED_REASON) => {
                        Some((api::INSTALL_SUCCEEDED_REASON, FMT_INSTALL_SUCCESS))
                    }
                    Some(api::UPGRADE_FAILED_REASON) => {
                        Some((api::UPGRADE_SUCCEEDED_REASON, FMT_UPGRADE_SUCCESS))
                    }
                    _ => None,
                };
                if let (Some((reason, prefix)), Some(cur)) = (cured, status.latest()) {
                    let message = success_message(prefix, cur);
                    set(
                        status,
                        generation,
                        api::RELEASED_CONDITION,
                        "True",
                        reason,
                        message,
                    );
                }
            }
            if hr.drift_detection_mode() != DriftDetectionMode::Disabled {
                set(
                    status,
                    generation,
                    api::DRIFTED_CONDITION,
                    "False",
                    api::NO_DRIFT_DETECTED_REASON,
                    "No drift detected against the cluster state".into(),
                );
            }
            Ok(Action::Nothing)
        }
        State::Locked(_) => Ok(Action::Unlock),
        State::Absent(_) => {
            let install = hr.remediation_for(api::ReleaseAction::Install);
            if install.is_some_and(|r| r.retries_exhausted(status)) && !d.force_requested {
                return Err(ActionError::RetriesExhausted("cannot install release"));
            }
            Ok(Action::Install)
        }
        State::Unmanaged(_) => {
            status.history = None;
            Ok(Action::Upgrade)
        }
        State::OutOfSync(_) => {
            let upgrade = hr.remediation_for(api::ReleaseAction::Upgrade);
            if upgrade.is_some_and(|r| r.retries_exhausted(status)) && !d.force_requested {
                return Err(ActionError::RetriesExhausted("cannot upgrade release"));
            }
            Ok(Action::Upgrade)
        }
        State::Drifted(message) => {
            set(
                status,
                generation,
                api::DRIFTED_CONDITION,
                "True",
                api::DRIFT_DETECTED_REASON,
                message.clone(),
            );
            if hr.drift_detection_mode() == DriftDetectionMode::Enabled {
                Ok(Action::CorrectDrift)
            } else {
                Ok(Action::Nothing)
            }
        }
        State::Untested => {
            replace_remediated(status, generation);
            Ok(Action::Test)
        }
        State::Failed(_) => {
            if hr.active_retry_interval().is_some() {
                status.truncate_history_ignoring_previous();
                return Ok(Action::Upgrade);
            }
            let Some(remediation) = remediation else {
                return Ok(Action::Upgrade);
            };
            if remediation.failure_count(status) <= 0 || d.force_requested {
                return Ok(Action::Upgrade);
            }
            if remediation.retries_exhausted(status) && !remediation.remediate_last_failure {
                return Err(ActionError::RetriesExhausted(
                    "cannot remediate failed release",
                ));
            }
            status.truncate_history(ignore_tests);
            match &remediation.strategy {
                RemediationStrategy::Rollback => {
                    let Some(previous) = status.previous(ignore_tests).cloned() else {
                        return Err(ActionError::MissingRollbackTarget);
                    };
                    match (d.rollback_target)(&previous) {
                        RollbackTarget::Verified => Ok(Action::RollbackTo(Box::new(previous))),
                        RollbackTarget::Unverified => Ok(Action::Upgrade),
                    }
                }
                RemediationStrategy::Uninstall => Ok(Action::UninstallRemediation),
                RemediationStrategy::Unknown(other) => {
                    Err(ActionError::UnknownStrategy(other.clone()))
                }
            }
        }
    }
}

/// `Remediated=True` becomes `Released=True UpgradeSucceeded` (the release is as wanted again).
fn replace_remediated(status: &mut HelmReleaseStatus, generation: Option<i64>) {
    let conditions = status.conditions.as_deref().unwrap_or_default();
    if !meta::is_condition_true(conditions, api::REMEDIATED_CONDITION) {
        return;
    }
    let Some(message) = status
        .latest()
        .map(|cur| success_message(FMT_UPGRADE_SUCCESS, cur))
    else {
        return;
    };
    let conditions = status.conditions_mut();
    meta::remove_condition(conditions, api::REMEDIATED_CONDITION);
    set(
        status,
        generation,
        api::RELEASED_CONDITION,
        "True",
        api::UPGRADE_SUCCEEDED_REASON,
        message,
    );
}

fn set(
    status: &mut HelmReleaseStatus,
    generation: Option<i64>,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
) {
    let condition: Condition = meta::new_condition(type_, value, reason, message, generation);
    meta::set_condition(status.conditions_mut(), condition);
}

/// The `status.history` entry for a stored release, as helm-controller writes it (`action` is
/// what made it: `install`, `upgrade`, ...; `oci_digest` the chart artifact's OCI digest, or
/// empty).
pub fn snapshot_of(
    release: &Release,
    action: &str,
    oci_digest: &str,
) -> Result<Snapshot, sluice_helm::release::ReleaseError> {
    let s = flux::snapshot(release, action, oci_digest)?;
    let nonempty = |v: String| (!v.is_empty()).then_some(v);
    let time = |t: Option<String>| -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
        serde_json::from_value(serde_json::Value::String(t?)).ok()
    };
    let zero = || {
        serde_json::from_value(serde_json::Value::String("0001-01-01T00:00:00Z".into()))
            .expect("Go's zero time parses")
    };
    Ok(Snapshot {
        api_version: nonempty(s.api_version),
        digest: s.digest,
        name: s.name,
        namespace: s.namespace,
        version: s.version,
        status: s.status,
        action: nonempty(s.action),
        chart_name: s.chart_name,
        chart_version: s.chart_version,
        app_version: nonempty(s.app_version),
        config_digest: s.config_digest,
        first_deployed: time(s.first_deployed).unwrap_or_else(zero),
        last_deployed: time(s.last_deployed).unwrap_or_else(zero),
        deleted: time(s.deleted),
        test_hooks: None,
        oci_digest: nonempty(s.oci_digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_helm::chart::Metadata;
    use sluice_helm::release::{Info, StoredChart};

    fn values(text: &str) -> YMap {
        sluice_helm::values::parse_values_file(text.as_bytes()).unwrap()
    }

    fn release(version: i64, status: &str, chart_version: &str, config: &str) -> Release {
        Release {
            name: "podinfo".into(),
            namespace: "apps".into(),
            version,
            info: Some(Info {
                first_deployed: Some("2026-11-30T10:00:00.123456789Z".into()),
                last_deployed: Some(format!("2026-11-30T10:0{version}:00.5Z")),
                status: status.into(),
                description: "Install complete".into(),
                ..Default::default()
            }),
            chart: Some(StoredChart {
                metadata: Some(Metadata {
                    name: "podinfo".into(),
                    version: chart_version.into(),
                    app_version: chart_version.into(),
                    api_version: "v2".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            config: values(config),
            manifest: "---\n# Source: podinfo/templates/service.yaml\nkind: Service\n".into(),
            ..Default::default()
        }
    }

    fn helm_release(extra: serde_json::Value) -> HelmRelease {
        let mut object = serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 1},
            "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
            "status": {"observedGeneration": 1},
        });
        merge(&mut object, extra);
        serde_json::from_value(object).unwrap()
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn with_history(hr: &mut HelmRelease, releases: &[&Release]) {
        let status = hr.status.get_or_insert_with(Default::default);
        status.history = Some(
            releases
                .iter()
                .map(|r| snapshot_of(r, "install", "").unwrap())
                .collect(),
        );
    }

    fn facts<'a>(last: Option<&'a Release>, version: &'a str, v: &'a YMap) -> Facts<'a> {
        Facts {
            last,
            chart_name: "podinfo",
            chart_version: version,
            values: v,
        }
    }

    #[test]
    fn states_as_helm_controller_determines_them() {
        let v = values("replicaCount: 2\n");
        let hr = helm_release(serde_json::json!({}));
        let state = |hr: &HelmRelease, last: Option<&Release>, version: &str, v: &YMap| {
            determine(hr, facts(last, version, v)).unwrap()
        };
        assert_eq!(
            state(&hr, None, "6.0.0", &v),
            State::Absent("no release in storage for object".into())
        );
        let pending = release(2, "pending-upgrade", "6.0.0", "replicaCount: 2\n");
        assert_eq!(
            state(&hr, Some(&pending), "6.0.0", &v),
            State::Locked("release with status 'pending-upgrade'".into())
        );
        let deployed = release(1, "deployed", "6.0.0", "replicaCount: 2\n");
        assert_eq!(
            state(&hr, Some(&deployed), "6.0.0", &v),
            State::Unmanaged("found existing release in storage".into()),
            "no history: someone else's release"
        );
        let uninstalled = release(1, "uninstalled", "6.0.0", "");
        assert_eq!(
            state(&hr, Some(&uninstalled), "6.0.0", &v),
            State::Absent("found uninstalled release in storage".into())
        );

        let mut hr = helm_release(serde_json::json!({}));
        with_history(&mut hr, &[&deployed]);
        assert_eq!(state(&hr, Some(&deployed), "6.0.0", &v), State::InSync);
        assert_eq!(
            state(&hr, Some(&deployed), "6.0.1", &v),
            State::OutOfSync("release chart changed".into())
        );
        assert_eq!(
            state(&hr, Some(&deployed), "6.0.0", &values("replicaCount: 3\n")),
            State::OutOfSync("release config values changed".into())
        );
        // A release changed behind the controller's back (another revision, same number).
        let mut edited = deployed.clone();
        edited.manifest.push_str("# edited\n");
        assert_eq!(
            state(&hr, Some(&edited), "6.0.0", &v),
            State::Unmanaged(RELEASE_NOT_OBSERVED.into())
        );
        let failed = release(1, "failed", "6.0.0", "replicaCount: 2\n");
        with_history(&mut hr, &[&failed]);
        assert_eq!(
            state(&hr, Some(&failed), "6.0.0", &v),
            State::Failed(String::new())
        );

        // A new generation with new post-renderers is out of sync even with the same values.
        let mut hr = helm_release(serde_json::json!({
            "metadata": {"generation": 2},
            "spec": {"postRenderers": [{"kustomize": {"images": [{"name": "x", "newTag": "2"}]}}]},
        }));
        with_history(&mut hr, &[&deployed]);
        assert_eq!(
            state(&hr, Some(&deployed), "6.0.0", &v),
            State::OutOfSync("postrenderers digest has changed".into())
        );
        let observed = digests::post_renderers(hr.spec.post_renderers.as_deref());
        hr.status.as_mut().unwrap().observed_post_renderers_digest = Some(observed);
        assert_eq!(state(&hr, Some(&deployed), "6.0.0", &v), State::InSync);

        // Tests enabled: untested, then failed tests count as a failure.
        let mut hr = helm_release(serde_json::json!({
            "spec": {"test": {"enable": true}},
            "status": {"lastAttemptedReleaseAction": "install"},
        }));
        with_history(&mut hr, &[&deployed]);
        assert_eq!(state(&hr, Some(&deployed), "6.0.0", &v), State::Untested);
        let history = hr.status.as_mut().unwrap().history.as_mut().unwrap();
        history[0].test_hooks = Some(
            [(
                "apps/podinfo-test".to_owned(),
                api::TestHookStatus {
                    phase: Some("Failed".into()),
                    ..Default::default()
                },
            )]
            .into(),
        );
        assert_eq!(
            state(&hr, Some(&deployed), "6.0.0", &v),
            State::Failed("release has test in failed phase".into())
        );
    }

    fn decide(force: bool) -> Decide<'static> {
        Decide {
            force_requested: force,
            rollback_target: &|_| RollbackTarget::Verified,
        }
    }

    #[test]
    fn actions_follow_retries_and_remediation() {
        let hr = helm_release(serde_json::json!({
            "status": {"installFailures": 1, "lastAttemptedReleaseAction": "install"},
        }));
        let mut status = hr.status.clone().unwrap();
        let absent = State::Absent(String::new());
        // install retries default to 0: one failure exhausts them.
        let err = next_action(&hr, &mut status, &absent, &decide(false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded maximum retries: cannot install release"
        );
        assert!(err.is_terminal());
        assert_eq!(
            next_action(&hr, &mut status, &absent, &decide(true)).unwrap(),
            Action::Install,
            "a force request overrides"
        );
        assert_eq!(
            next_action(
                &hr,
                &mut status,
                &State::Locked(String::new()),
                &decide(false)
            )
            .unwrap(),
            Action::Unlock
        );

        // A failed upgrade with retries: roll back to the previous deployed release.
        let v1 = release(1, "superseded", "6.0.0", "");
        let v2 = release(2, "failed", "6.0.1", "");
        let mut hr = helm_release(serde_json::json!({
            "spec": {"upgrade": {"remediation": {"retries": 2}}},
            "status": {"upgradeFailures": 1, "lastAttemptedReleaseAction": "upgrade"},
        }));
        with_history(&mut hr, &[&v2, &v1]);
        let mut status = hr.status.clone().unwrap();
        let failed = State::Failed(String::new());
        match next_action(&hr, &mut status, &failed, &decide(false)).unwrap() {
            Action::RollbackTo(s) => assert_eq!(s.version, 1),
            other => panic!("{other:?}"),
        }
        let gone = Decide {
            force_requested: false,
            rollback_target: &|_| RollbackTarget::Unverified,
        };
        assert_eq!(
            next_action(&hr, &mut status, &failed, &gone).unwrap(),
            Action::Upgrade,
            "a target gone from storage: upgrade instead"
        );
        // Retries spent: remediate the last failure (the default with retries), then stop.
        status.upgrade_failures = Some(3);
        assert!(matches!(
            next_action(&hr, &mut status, &failed, &decide(false)).unwrap(),
            Action::RollbackTo(_)
        ));
        let mut no_last = hr.clone();
        no_last
            .spec
            .upgrade
            .as_mut()
            .unwrap()
            .remediation
            .as_mut()
            .unwrap()
            .remediate_last_failure = Some(false);
        let err = next_action(&no_last, &mut status, &failed, &decide(false)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded maximum retries: cannot remediate failed release"
        );
        // Nothing to roll back to.
        let mut alone = hr.clone();
        with_history(&mut alone, &[&v2]);
        let mut status = alone.status.clone().unwrap();
        assert_eq!(
            next_action(&alone, &mut status, &failed, &decide(false)).unwrap_err(),
            ActionError::MissingRollbackTarget
        );
        // Failures cleared by a new spec: upgrade.
        status.upgrade_failures = None;
        assert_eq!(
            next_action(&alone, &mut status, &failed, &decide(false)).unwrap(),
            Action::Upgrade
        );
        // The uninstall strategy.
        let mut uninstall = hr.clone();
        uninstall
            .spec
            .upgrade
            .as_mut()
            .unwrap()
            .remediation
            .as_mut()
            .unwrap()
            .strategy = Some(RemediationStrategy::Uninstall);
        let mut status = uninstall.status.clone().unwrap();
        assert_eq!(
            next_action(&uninstall, &mut status, &failed, &decide(false)).unwrap(),
            Action::UninstallRemediation
        );
        // RetryOnFailure: upgrade again, no remediation.
        let retry = helm_release(serde_json::json!({
            "spec": {"upgrade": {"strategy": {"name": "RetryOnFailure"}}},
            "status": {"upgradeFailures": 5, "lastAttemptedReleaseAction": "upgrade"},
        }));
        let mut status = retry.status.clone().unwrap();
        assert_eq!(
            next_action(&retry, &mut status, &failed, &decide(false)).unwrap(),
            Action::Upgrade
        );
        // Unmanaged: the history is dropped and the release upgraded (adopted).
        let mut status = hr.status.clone().unwrap();
        assert_eq!(
            next_action(
                &hr,
                &mut status,
                &State::Unmanaged(String::new()),
                &decide(false)
            )
            .unwrap(),
            Action::Upgrade
        );
        assert!(status.history.is_none());
    }

    #[test]
    fn in_sync_cures_an_earlier_failure_and_clears_drift() {
        let v1 = release(1, "deployed", "6.0.0", "");
        let mut hr = helm_release(serde_json::json!({
            "spec": {"driftDetection": {"mode": "warn"}},
            "status": {"conditions": [{
                "type": "Released", "status": "False", "reason": "UpgradeFailed",
                "message": "boom", "lastTransitionTime": "2026-11-30T10:00:00Z"
            }]},
        }));
        with_history(&mut hr, &[&v1]);
        let mut status = hr.status.clone().unwrap();
        assert_eq!(
            next_action(&hr, &mut status, &State::InSync, &decide(false)).unwrap(),
            Action::Nothing
        );
        let conditions = status.conditions.as_deref().unwrap();
        let released = meta::find_condition(conditions, api::RELEASED_CONDITION).unwrap();
        assert_eq!(released.reason, api::UPGRADE_SUCCEEDED_REASON);
        assert_eq!(
            released.message,
            "Helm upgrade succeeded for release apps/podinfo.v1 with chart podinfo@6.0.0"
        );
        let drifted = meta::find_condition(conditions, api::DRIFTED_CONDITION).unwrap();
        assert_eq!(drifted.status, "False");
        assert_eq!(
            next_action(&hr, &mut status, &State::InSync, &decide(true)).unwrap(),
            Action::Upgrade,
            "forced"
        );
        let drift = State::Drifted("Deployment/apps/podinfo changed".into());
        assert_eq!(
            next_action(&hr, &mut status, &drift, &decide(false)).unwrap(),
            Action::Nothing,
            "warn mode reports only"
        );
        let conditions = status.conditions.as_deref().unwrap();
        assert!(meta::is_condition_true(conditions, api::DRIFTED_CONDITION));
    }

    #[test]
    fn snapshots_carry_seconds_and_flux_digests() {
        let v1 = release(1, "deployed", "6.0.0", "replicaCount: 2\n");
        let s = snapshot_of(&v1, "install", "").unwrap();
        assert_eq!(s.api_version.as_deref(), Some("v2"));
        assert_eq!(s.full_release_name(), "apps/podinfo.v1");
        assert_eq!(
            s.config_digest,
            flux::config_digest(&values("replicaCount: 2\n"))
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["firstDeployed"], "2026-11-30T10:00:00Z");
        assert!(json.get("ociDigest").is_none());
        assert!(verify_snapshot(&s, &v1).is_ok());
    }
}
