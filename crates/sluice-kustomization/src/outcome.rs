//! How a Kustomization's run ends, as data, and the pure function that
//! turns it into the status to write, the events and the next run
//! ([`conclude`]). The conditions and the schedule come from
//! `sluice_runtime::decide`; this adds what is the Kustomization's own
//! (revisions, observedGeneration, the success event). Tested for every
//! reason without a cluster.

use std::time::Duration;

use sluice_api::Kustomization;
use sluice_api::kustomization::KustomizationStatus;
use sluice_api::meta::{self, FluxObject};
use sluice_runtime::{Decision, Event, Failure, History, Outcome, Policy, decide};

/// Reason for fields sluice accepts but does not implement yet.
pub const UNSUPPORTED_REASON: &str = meta::UNSUPPORTED_FIELD_REASON;
pub use sluice_runtime::tenancy::ACCESS_DENIED_REASON;
/// Flux's reason for health checks cut short (here: by a shutdown).
pub const HEALTH_CHECK_CANCELED_REASON: &str = "HealthCheckCanceled";

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Applied, pruned and healthy.
    Done {
        revision: String,
        changed: bool,
        elapsed: Duration,
    },
    Failed {
        failure: Failure,
        /// The revision attempted, when the source had one.
        revision: Option<String>,
    },
    /// A dependency is not ready.
    Blocked { message: String, cycle: bool },
    /// Applied; the health checks are still waiting.
    Waiting { revision: String, message: String },
}

/// The status to write, the events to publish, the next run.
#[derive(Clone, Debug, PartialEq)]
pub struct Concluded {
    pub status: KustomizationStatus,
    pub decision: Decision,
    /// The result label of `sluice_kustomization_reconciles_total`.
    pub result: &'static str,
}

/// Concludes a run of `ks`: `status` is what the phases built (inventory,
/// Healthy, lastHandledReconcileAt), `events` what they want told (change
/// logs).
pub fn conclude(
    ks: &Kustomization,
    mut status: KustomizationStatus,
    ended: Ended,
    events: Vec<Event>,
    policy: &Policy,
    history: History,
) -> Concluded {
    let generation = kube::Resource::meta(ks).generation;
    let previous_ready =
        meta::find_condition(ks.conditions(), meta::READY_CONDITION).map(|c| c.message.clone());
    let (outcome, result) = match &ended {
        Ended::Done {
            revision,
            changed,
            elapsed,
        } => {
            let was_ready =
                ks.is_ready() && status.last_applied_revision.as_deref() == Some(revision.as_str());
            status.last_applied_revision = Some(revision.clone());
            status.last_attempted_revision = Some(revision.clone());
            status.observed_generation = generation;
            let event = (!was_ready || *changed).then(|| {
                (
                    meta::RECONCILIATION_SUCCEEDED_REASON,
                    format!(
                        "Reconciliation finished in {}, next run in {}",
                        meta::format_duration(Duration::from_millis(elapsed.as_millis() as u64)),
                        meta::format_duration(policy.interval)
                    ),
                )
            });
            let outcome = Outcome::Succeeded {
                reason: meta::RECONCILIATION_SUCCEEDED_REASON,
                message: format!("Applied revision: {revision}"),
                event,
            };
            (outcome, if *changed { "applied" } else { "unchanged" })
        }
        Ended::Failed { failure, revision } => {
            if let Some(rev) = revision {
                status.last_attempted_revision = Some(rev.clone());
            }
            status.observed_generation = generation;
            (Outcome::Failed(failure.clone()), "failed")
        }
        Ended::Blocked { message, cycle } => (
            Outcome::Blocked {
                reason: meta::DEPENDENCY_NOT_READY_REASON,
                message: message.clone(),
                stalled: *cycle,
            },
            "blocked",
        ),
        Ended::Waiting { revision, message } => {
            status.last_attempted_revision = Some(revision.clone());
            (
                Outcome::Progressing {
                    reason: meta::PROGRESSING_REASON,
                    message: message.clone(),
                },
                "waiting",
            )
        }
    };
    let mut decision = decide(
        status.conditions_mut(),
        generation,
        previous_ready.as_deref(),
        &outcome,
        policy,
        history,
    );
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    // As kustomize-controller, the "Reconciliation finished" event is the one that sets commit
    // statuses.
    for e in &mut decision.events {
        if e.reason == meta::RECONCILIATION_SUCCEEDED_REASON
            && e.message.starts_with("Reconciliation finished")
        {
            *e = e.clone().commit_status_update();
        }
    }
    let mut all = events;
    all.append(&mut decision.events);
    decision.events = all;
    Concluded {
        status,
        decision,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::meta::*;
    use sluice_runtime::EventType;

    fn ks(ready: bool) -> Kustomization {
        let mut ks: Kustomization = serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "generation": 4},
            "spec": {"interval": "10m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}},
        }))
        .unwrap();
        if ready {
            ks.status = Some(KustomizationStatus {
                observed_generation: Some(4),
                last_applied_revision: Some("main@sha1:1".into()),
                conditions: Some(vec![new_condition(
                    READY_CONDITION,
                    CONDITION_TRUE,
                    RECONCILIATION_SUCCEEDED_REASON,
                    "Applied revision: main@sha1:1",
                    Some(4),
                )]),
                ..Default::default()
            });
        }
        ks
    }

    fn policy() -> Policy {
        Policy::new(Duration::from_secs(600), Duration::from_secs(60))
    }

    fn run(ks: &Kustomization, ended: Ended) -> Concluded {
        let status = ks.status.clone().unwrap_or_default();
        conclude(ks, status, ended, vec![], &policy(), History::default())
    }

    fn ready(c: &Concluded) -> (String, String, String) {
        let r = find_condition(
            c.status.conditions.as_deref().unwrap_or_default(),
            READY_CONDITION,
        )
        .unwrap();
        (r.status.clone(), r.reason.clone(), r.message.clone())
    }

    #[test]
    fn done_records_the_revision_and_tells_once() {
        let fresh = ks(false);
        let c = run(
            &fresh,
            Ended::Done {
                revision: "main@sha1:2".into(),
                changed: true,
                elapsed: Duration::from_millis(1500),
            },
        );
        assert_eq!(
            ready(&c),
            (
                "True".into(),
                RECONCILIATION_SUCCEEDED_REASON.into(),
                "Applied revision: main@sha1:2".into()
            )
        );
        assert_eq!(
            c.status.last_applied_revision.as_deref(),
            Some("main@sha1:2")
        );
        assert_eq!(
            c.status.last_attempted_revision.as_deref(),
            Some("main@sha1:2")
        );
        assert_eq!(c.status.observed_generation, Some(4));
        assert_eq!(c.result, "applied");
        assert_eq!(
            c.decision.events,
            [Event::normal(
                RECONCILIATION_SUCCEEDED_REASON,
                "Reconciliation finished in 1.5s, next run in 10m0s"
            )
            .commit_status_update()]
        );
        assert_eq!(c.decision.requeue, Duration::from_secs(600));
        // Already ready at this revision, nothing changed: no event.
        let quiet = run(
            &ks(true),
            Ended::Done {
                revision: "main@sha1:1".into(),
                changed: false,
                elapsed: Duration::from_secs(1),
            },
        );
        assert!(quiet.decision.events.is_empty());
        assert_eq!(quiet.result, "unchanged");
    }

    #[test]
    fn every_failure_reason_keeps_the_applied_revision_and_records_the_attempt() {
        for (reason, stalled) in [
            (ARTIFACT_FAILED_REASON, false),
            (BUILD_FAILED_REASON, false),
            (RECONCILIATION_FAILED_REASON, false),
            (PRUNE_FAILED_REASON, false),
            (HEALTH_CHECK_FAILED_REASON, false),
            (HEALTH_CHECK_CANCELED_REASON, false),
            (UNSUPPORTED_REASON, true),
            (meta::INVALID_CEL_EXPRESSION_REASON, true),
            (ACCESS_DENIED_REASON, true),
        ] {
            let failure = if stalled {
                Failure::stalled(reason, "why")
            } else {
                Failure::new(reason, "why")
            };
            let c = run(
                &ks(true),
                Ended::Failed {
                    failure,
                    revision: Some("main@sha1:2".into()),
                },
            );
            assert_eq!(ready(&c), ("False".into(), reason.into(), "why".into()));
            assert_eq!(
                c.status.last_applied_revision.as_deref(),
                Some("main@sha1:1")
            );
            assert_eq!(
                c.status.last_attempted_revision.as_deref(),
                Some("main@sha1:2")
            );
            let conds = c.status.conditions.clone().unwrap();
            assert_eq!(
                is_condition_true(&conds, STALLED_CONDITION),
                stalled,
                "{reason}"
            );
            assert_eq!(
                is_condition_true(&conds, RECONCILING_CONDITION),
                !stalled,
                "{reason}"
            );
            assert_eq!(c.decision.events[0].type_, EventType::Warning);
            assert_eq!(
                c.decision.requeue,
                Duration::from_secs(if stalled { 600 } else { 60 })
            );
        }
    }

    #[test]
    fn blocked_and_waiting_leave_the_last_applied_revision() {
        let b = run(
            &ks(true),
            Ended::Blocked {
                message: "dependency 'flux-system/infra' is not ready".into(),
                cycle: false,
            },
        );
        assert_eq!(ready(&b).1, DEPENDENCY_NOT_READY_REASON);
        assert_eq!(b.result, "blocked");
        assert_eq!(b.decision.requeue, Duration::from_secs(30));
        let w = run(
            &ks(true),
            Ended::Waiting {
                revision: "main@sha1:2".into(),
                message: "waiting for 1 object".into(),
            },
        );
        assert_eq!(
            ready(&w),
            (
                "Unknown".into(),
                PROGRESSING_REASON.into(),
                "waiting for 1 object".into()
            )
        );
        assert_eq!(
            w.status.last_applied_revision.as_deref(),
            Some("main@sha1:1")
        );
        assert_eq!(
            w.status.last_attempted_revision.as_deref(),
            Some("main@sha1:2")
        );
        assert_eq!(w.decision.requeue, Duration::from_secs(2));
        assert!(w.decision.events.is_empty());
    }

    #[test]
    fn phase_events_come_before_the_outcome_event() {
        let c = conclude(
            &ks(false),
            KustomizationStatus::default(),
            Ended::Done {
                revision: "r".into(),
                changed: true,
                elapsed: Duration::ZERO,
            },
            vec![Event::normal(PROGRESSING_REASON, "ConfigMap/ns/a created")],
            &policy(),
            History::default(),
        );
        let reasons: Vec<_> = c
            .decision
            .events
            .iter()
            .map(|e| e.reason.as_ref())
            .collect();
        assert_eq!(
            reasons,
            [PROGRESSING_REASON, RECONCILIATION_SUCCEEDED_REASON]
        );
    }
}
