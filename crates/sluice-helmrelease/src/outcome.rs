//! How a HelmRelease's run ends, as data, and the pure function that turns it into the status
//! to write, the events and the next run ([`conclude`]), on top of `sluice_runtime::decide`
//! (Ready, Reconciling, Stalled, the event policy, the schedule). The `Released` and
//! `Remediated` conditions and the history are set by the run itself, as helm-controller's
//! actions set them; this decides Ready from them.

use std::time::Duration;

use sluice_api::HelmRelease;
use sluice_api::helm_release::{self as api, HelmReleaseStatus};
use sluice_api::meta::{self, FluxObject};
use sluice_runtime::{Decision, Failure, History, Outcome, Policy, Retry, decide};

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The release is as wanted: Ready=True with the `Released` condition's reason and message.
    /// `changed`: an action ran (the success is told as an event).
    Released { changed: bool },
    /// A remediation ran after a failure: Ready=False with the `Remediated` condition's reason
    /// and message; retried soon.
    Remediated,
    /// A phase or an action failed.
    Failed(Failure),
    /// The chart source is missing or has no artifact yet: Ready=False with the failure's
    /// reason, retried, and no event (helm-controller only logs it: a Kustomization
    /// applying a HelmRelease and its OCIRepository together always passes through this).
    WaitingForSource(Failure),
    /// A dependency is not ready.
    Blocked(String),
    /// A revision was applied and is being waited for (the worker is released): Ready=Unknown,
    /// Reconciling=True, looked at again soon.
    Progressing(String),
}

/// The scheduling policy of a HelmRelease: its interval; failures retried from 5s, doubling,
/// up to the interval (helm-controller leaves retries to controller-runtime's backoff).
pub fn policy(hr: &HelmRelease, dependency_requeue: Duration, progress_poll: Duration) -> Policy {
    let interval = hr.interval().unwrap_or(Duration::from_secs(600));
    Policy {
        retry: Retry::Exponential {
            base: Duration::from_secs(2),
            cap: interval,
        },
        dependency_requeue,
        progress_poll,
        ..Policy::new(interval, interval)
    }
}

/// Concludes a run of `hr` with `status` as the run left it: Ready, Reconciling and Stalled
/// decided; `observedGeneration` set when the release is as wanted.
pub fn conclude(
    hr: &HelmRelease,
    status: &mut HelmReleaseStatus,
    ended: &Ended,
    policy: &Policy,
    history: History,
) -> Decision {
    let generation = hr.metadata.generation;
    let previous_ready =
        meta::find_condition(hr.conditions(), meta::READY_CONDITION).map(|c| c.message.clone());
    let from = |status: &HelmReleaseStatus, type_: &str| {
        meta::find_condition(status.conditions.as_deref().unwrap_or_default(), type_)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let test = tests_count(hr)
        .then(|| {
            meta::find_condition(
                status.conditions.as_deref().unwrap_or_default(),
                api::TEST_SUCCESS_CONDITION,
            )
            .cloned()
        })
        .flatten();
    let outcome = match ended {
        // A failed test that counts makes the release not Ready (helm-controller's summary puts
        // TestSuccess before Released).
        Ended::Released { .. } if test.as_ref().is_some_and(|c| c.status == "False") => {
            let (reason, message) = test
                .as_ref()
                .map(|c| (c.reason.clone(), c.message.clone()))
                .unwrap_or_default();
            Outcome::Failed(Failure::new(reason, message))
        }
        Ended::Released { changed } => {
            status.observed_generation = generation;
            let tested = test
                .as_ref()
                .filter(|c| c.status == "True")
                .map(|c| (c.reason.clone(), c.message.clone()));
            let (reason, message) = tested
                .or_else(|| from(status, api::RELEASED_CONDITION))
                .unwrap_or_else(|| {
                    (
                        meta::RECONCILIATION_SUCCEEDED_REASON.into(),
                        "Release reconciliation succeeded".into(),
                    )
                });
            let reason = static_reason(&reason);
            Outcome::Succeeded {
                reason,
                message: message.clone(),
                event: changed.then(|| (reason, message)),
            }
        }
        Ended::Remediated => {
            let (reason, message) = from(status, api::REMEDIATED_CONDITION)
                .unwrap_or_else(|| ("Remediated".into(), "the release was remediated".into()));
            Outcome::Failed(Failure::new(reason, message))
        }
        Ended::Failed(f) | Ended::WaitingForSource(f) => Outcome::Failed(f.clone()),
        Ended::Blocked(message) => Outcome::Blocked {
            reason: meta::DEPENDENCY_NOT_READY_REASON,
            message: message.clone(),
            stalled: false,
        },
        Ended::Progressing(message) => Outcome::Progressing {
            reason: meta::PROGRESSING_REASON,
            message: message.clone(),
        },
    };
    let mut decision = decide(
        status.conditions_mut(),
        generation,
        previous_ready.as_deref(),
        &outcome,
        policy,
        history,
    );
    if matches!(ended, Ended::WaitingForSource(_)) {
        decision.events.clear();
    }
    decision
}

/// Whether the TestSuccess condition speaks for the release (tests enabled, failures not
/// ignored), as in helm-controller's summary.
pub fn tests_count(hr: &HelmRelease) -> bool {
    hr.test_enabled() && !hr.test().ignore_failures.unwrap_or(false)
}

/// The success reasons as the `&'static str` events take.
pub fn static_reason(reason: &str) -> &'static str {
    match reason {
        api::INSTALL_SUCCEEDED_REASON => api::INSTALL_SUCCEEDED_REASON,
        api::UPGRADE_SUCCEEDED_REASON => api::UPGRADE_SUCCEEDED_REASON,
        api::TEST_SUCCEEDED_REASON => api::TEST_SUCCEEDED_REASON,
        api::ROLLBACK_SUCCEEDED_REASON => api::ROLLBACK_SUCCEEDED_REASON,
        _ => meta::RECONCILIATION_SUCCEEDED_REASON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hr() -> HelmRelease {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 3},
            "spec": {"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
        }))
        .unwrap()
    }

    /// Concludes a run of `hr` that `ended` so, from an empty status.
    fn concluded(
        hr: &HelmRelease,
        ended: &Ended,
        policy: &Policy,
    ) -> (HelmReleaseStatus, Decision) {
        let mut status = HelmReleaseStatus::default();
        let d = conclude(hr, &mut status, ended, policy, History::default());
        (status, d)
    }

    fn ready_of(
        status: &HelmReleaseStatus,
    ) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        meta::find_condition(status.conditions.as_deref().unwrap(), meta::READY_CONDITION).unwrap()
    }

    fn set(status: &mut HelmReleaseStatus, type_: &str, value: &str, reason: &str, msg: &str) {
        meta::set_condition(
            status.conditions_mut(),
            meta::new_condition(type_, value, reason, msg, Some(3)),
        );
    }

    #[test]
    fn ready_follows_released_and_remediated() {
        let hr = hr();
        let policy = policy(&hr, Duration::from_secs(30), Duration::from_secs(2));
        let mut status = HelmReleaseStatus::default();
        let msg = "Helm install succeeded for release apps/podinfo.v1 with chart podinfo@6.7.1";
        set(
            &mut status,
            api::RELEASED_CONDITION,
            "True",
            api::INSTALL_SUCCEEDED_REASON,
            msg,
        );
        let d = conclude(
            &hr,
            &mut status,
            &Ended::Released { changed: true },
            &policy,
            History::default(),
        );
        let ready = ready_of(&status);
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            ("True", "InstallSucceeded", msg)
        );
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(d.requeue, Duration::from_secs(600));
        assert_eq!(d.events.len(), 1);

        let mut status = HelmReleaseStatus::default();
        let msg =
            "Helm rollback to previous release apps/podinfo.v1 with chart podinfo@6.7.1 succeeded";
        set(
            &mut status,
            api::REMEDIATED_CONDITION,
            "True",
            api::ROLLBACK_SUCCEEDED_REASON,
            msg,
        );
        let d = conclude(
            &hr,
            &mut status,
            &Ended::Remediated,
            &policy,
            History::default(),
        );
        let conditions = status.conditions.as_deref().unwrap();
        let ready = meta::find_condition(conditions, meta::READY_CONDITION).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RollbackSucceeded")
        );
        assert!(meta::is_condition_true(
            conditions,
            meta::RECONCILING_CONDITION
        ));
        assert_eq!(d.requeue, Duration::from_secs(4), "retried soon");
        assert!(status.observed_generation.is_none());

        let mut status = HelmReleaseStatus::default();
        let f = Failure::stalled(
            meta::UNSUPPORTED_FIELD_REASON,
            "spec.install.serverSideApply: false is not supported by sluice yet",
        );
        conclude(
            &hr,
            &mut status,
            &Ended::Failed(f),
            &policy,
            History::default(),
        );
        assert!(meta::is_condition_true(
            status.conditions.as_deref().unwrap(),
            meta::STALLED_CONDITION
        ));

        let (status, d) = concluded(
            &hr,
            &Ended::Blocked("dependency 'infra/cert-manager' is not ready".into()),
            &policy,
        );
        assert_eq!(ready_of(&status).reason, "DependencyNotReady");
        assert_eq!(d.requeue, Duration::from_secs(4));

        // A source not there yet: Ready=False with its reason, retried, and no event; the
        // same failure from a phase is told.
        let missing = Failure::new(
            "SourceNotReady",
            "OCIRepository source 'apps/podinfo' has no artifact yet",
        );
        let (status, d) = concluded(&hr, &Ended::WaitingForSource(missing.clone()), &policy);
        let r = ready_of(&status);
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "SourceNotReady")
        );
        assert!(d.events.is_empty(), "{:?}", d.events);
        assert_eq!(d.requeue, Duration::from_secs(4));
        let (_, d) = concluded(&hr, &Ended::Failed(missing), &policy);
        assert_eq!(d.events.len(), 1);
    }
}
