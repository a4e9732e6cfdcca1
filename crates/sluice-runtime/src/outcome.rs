//! A reconcile's result as data, and the one pure function that turns it
//! into Flux's conditions, the events to publish and the next schedule.
//!
//! Controllers run their phases (each returning `Result<_, Failure>`), build
//! an [`Outcome`] and call [`decide`]; they never set Ready, Reconciling or
//! Stalled themselves. Everything here is tested without an API server.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::meta::{
    self, CONDITION_FALSE, CONDITION_TRUE, CONDITION_UNKNOWN, READY_CONDITION,
    RECONCILING_CONDITION, STALLED_CONDITION,
};

use crate::conditions;
use crate::events::Event;

/// A phase that failed: Flux's reason and a message naming the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: Cow<'static, str>,
    pub message: String,
    /// Retrying cannot help until the spec (or something the user edits)
    /// changes: Stalled=True instead of Reconciling=True.
    pub stalled: bool,
    /// A negative-polarity condition set True beside Ready=False, as
    /// source-controller does (`FetchFailed`, `StorageOperationFailed`).
    pub condition: Option<&'static str>,
}

impl Failure {
    /// A failure worth retrying.
    pub fn new(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            message: message.into(),
            stalled: false,
            condition: None,
        }
    }

    /// A failure that only a change of the spec resolves.
    pub fn stalled(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Failure {
            stalled: true,
            ..Failure::new(reason, message)
        }
    }

    /// Also sets `condition` to True (with the same reason and message).
    pub fn with_condition(mut self, condition: &'static str) -> Self {
        self.condition = Some(condition);
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// How a reconcile ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every phase succeeded: Ready=True.
    Succeeded {
        reason: &'static str,
        message: String,
        /// The event telling what was done (`None` when nothing changed and
        /// there is nothing to tell).
        event: Option<(&'static str, String)>,
    },
    /// A phase failed: Ready=False with its reason.
    Failed(Failure),
    /// Waiting for something outside the object that will change by itself
    /// (a dependency): Ready=False; Stalled=True too when it cannot resolve
    /// (a dependency cycle).
    Blocked {
        reason: &'static str,
        message: String,
        stalled: bool,
    },
    /// Work in progress that this run does not wait for (a health check that
    /// is not done yet): Ready=Unknown, Reconciling=True; the object is
    /// looked at again soon, or when what it waits for changes.
    Progressing {
        reason: &'static str,
        message: String,
    },
}

/// When a failure is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// After a fixed delay (a Kustomization's `spec.retryInterval`).
    Fixed(Duration),
    /// Doubling from `base` with each consecutive failure, up to `cap`
    /// (source-controller's backoff, capped by the interval).
    Exponential { base: Duration, cap: Duration },
}

/// When a failure's Warning event is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Only when the message differs from the last Ready message.
    OnChange,
    /// Every time (the recorder folds repeats into one series).
    Always,
}

/// A controller's scheduling and condition policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `spec.interval`: the next run after a success or a stall.
    pub interval: Duration,
    pub retry: Retry,
    /// A blocked object is looked at again after this at the latest
    /// (Flux's `--requeue-dependency`; events usually wake it sooner).
    pub dependency_requeue: Duration,
    /// An object in progress is looked at again after this at the latest.
    pub progress_poll: Duration,
    pub failure_events: Repeat,
    /// Negative-polarity conditions a success clears.
    pub cleared_on_success: &'static [&'static str],
}

impl Policy {
    /// The policy of an object with this interval and fixed retry.
    pub fn new(interval: Duration, retry: Duration) -> Self {
        Policy {
            interval,
            retry: Retry::Fixed(retry),
            dependency_requeue: Duration::from_secs(30),
            progress_poll: Duration::from_secs(2),
            failure_events: Repeat::OnChange,
            cleared_on_success: &[],
        }
    }
}

/// What a reconcile leaves to do once its status is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<Event>,
    /// When to reconcile again if nothing wakes the object sooner.
    pub requeue: Duration,
    /// The result label of the reconcile metrics.
    pub result: &'static str,
}

/// What a controller remembers of an object between runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Failures in a row before this run (for exponential retry).
    pub consecutive_failures: u32,
}

/// Turns `outcome` into conditions (in `conditions`, ordered as Flux orders
/// them), events and the next schedule. `previous_ready` is the Ready
/// condition's message before this run (events are not repeated for an
/// unchanged message unless the policy says so).
pub fn decide(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    previous_ready: Option<&str>,
    outcome: &Outcome,
    policy: &Policy,
    history: History,
) -> Decision {
    let mut set = |type_: &str, status: &str, reason: &str, message: &str| {
        meta::set_condition(
            conditions,
            meta::new_condition(type_, status, reason, message, generation),
        );
    };
    let changed = |message: &str| previous_ready != Some(message);
    let decision = match outcome {
        Outcome::Succeeded {
            reason,
            message,
            event,
        } => {
            set(READY_CONDITION, CONDITION_TRUE, reason, message);
            for t in [RECONCILING_CONDITION, STALLED_CONDITION]
                .iter()
                .chain(policy.cleared_on_success)
            {
                meta::remove_condition(conditions, t);
            }
            Decision {
                events: event
                    .iter()
                    .map(|(reason, note)| Event::normal(*reason, note.clone()))
                    .collect(),
                requeue: policy.interval,
                result: "succeeded",
            }
        }
        Outcome::Failed(f) => {
            set(READY_CONDITION, CONDITION_FALSE, &f.reason, &f.message);
            if let Some(c) = f.condition {
                set(c, CONDITION_TRUE, &f.reason, &f.message);
            }
            if f.stalled {
                set(STALLED_CONDITION, CONDITION_TRUE, &f.reason, &f.message);
                meta::remove_condition(conditions, RECONCILING_CONDITION);
            } else {
                set(
                    RECONCILING_CONDITION,
                    CONDITION_TRUE,
                    meta::PROGRESSING_WITH_RETRY_REASON,
                    &f.message,
                );
                meta::remove_condition(conditions, STALLED_CONDITION);
            }
            let publish = policy.failure_events == Repeat::Always || changed(&f.message);
            Decision {
                events: publish
                    .then(|| Event::warning(f.reason.clone(), f.message.clone()))
                    .into_iter()
                    .collect(),
                requeue: if f.stalled {
                    policy.interval
                } else {
                    retry_after(policy, history.consecutive_failures + 1)
                },
                result: "failed",
            }
        }
        Outcome::Blocked {
            reason,
            message,
            stalled,
        } => {
            set(READY_CONDITION, CONDITION_FALSE, reason, message);
            if *stalled {
                set(STALLED_CONDITION, CONDITION_TRUE, reason, message);
            } else {
                meta::remove_condition(conditions, STALLED_CONDITION);
            }
            Decision {
                events: changed(message)
                    .then(|| Event::normal(*reason, message.clone()))
                    .into_iter()
                    .collect(),
                requeue: policy
                    .dependency_requeue
                    .min(retry_after(policy, 1))
                    .max(Duration::from_secs(1)),
                result: "blocked",
            }
        }
        Outcome::Progressing { reason, message } => {
            set(READY_CONDITION, CONDITION_UNKNOWN, reason, message);
            set(RECONCILING_CONDITION, CONDITION_TRUE, reason, message);
            meta::remove_condition(conditions, STALLED_CONDITION);
            Decision {
                events: Vec::new(),
                requeue: policy.progress_poll,
                result: "progressing",
            }
        }
    };
    conditions::sort(conditions);
    decision
}

/// The delay before retry number `attempt` (1 for the first retry).
pub fn retry_after(policy: &Policy, attempt: u32) -> Duration {
    match policy.retry {
        Retry::Fixed(d) => d,
        Retry::Exponential { base, cap } => {
            base.saturating_mul(1u32 << attempt.clamp(1, 20)).min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use sluice_api::meta::*;

    fn policy() -> Policy {
        Policy {
            dependency_requeue: Duration::from_secs(30),
            ..Policy::new(Duration::from_secs(600), Duration::from_secs(60))
        }
    }

    fn find<'a>(c: &'a [Condition], t: &str) -> Option<(&'a str, &'a str, &'a str)> {
        find_condition(c, t).map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()))
    }

    fn types(c: &[Condition]) -> Vec<&str> {
        c.iter().map(|c| c.type_.as_str()).collect()
    }

    fn failed(reason: &'static str, stalled: bool) -> (Vec<Condition>, Decision) {
        let mut c = vec![];
        let f = if stalled {
            Failure::stalled(reason, "the cause")
        } else {
            Failure::new(reason, "the cause")
        };
        let d = decide(
            &mut c,
            Some(3),
            None,
            &Outcome::Failed(f),
            &policy(),
            History::default(),
        );
        (c, d)
    }

    #[test]
    fn every_retried_flux_reason_sets_ready_false_and_reconciling() {
        for reason in [
            ARTIFACT_FAILED_REASON,
            BUILD_FAILED_REASON,
            RECONCILIATION_FAILED_REASON,
            HEALTH_CHECK_FAILED_REASON,
            PRUNE_FAILED_REASON,
            GIT_OPERATION_FAILED_REASON,
            AUTHENTICATION_FAILED_REASON,
            STORAGE_OPERATION_FAILED_REASON,
            "HealthCheckCanceled",
        ] {
            let (c, d) = failed(reason, false);
            assert_eq!(
                find(&c, READY_CONDITION),
                Some(("False", reason, "the cause"))
            );
            assert_eq!(
                find(&c, RECONCILING_CONDITION),
                Some(("True", PROGRESSING_WITH_RETRY_REASON, "the cause"))
            );
            assert_eq!(find(&c, STALLED_CONDITION), None);
            assert_eq!(types(&c), [READY_CONDITION, RECONCILING_CONDITION]);
            assert_eq!(d.requeue, Duration::from_secs(60), "{reason}");
            assert_eq!(d.events, [Event::warning(reason, "the cause")]);
            assert_eq!(d.result, "failed");
            assert!(c.iter().all(|c| c.observed_generation == Some(3)));
        }
    }

    #[test]
    fn every_stalling_flux_reason_sets_stalled_and_waits_an_interval() {
        for reason in [
            "UnsupportedField",
            "InvalidCELExpression",
            "AccessDenied",
            URL_INVALID_REASON,
            "InvalidInterval",
        ] {
            let (c, d) = failed(reason, true);
            assert_eq!(types(&c), [READY_CONDITION, STALLED_CONDITION], "{reason}");
            assert_eq!(
                find(&c, STALLED_CONDITION),
                Some(("True", reason, "the cause"))
            );
            assert_eq!(d.requeue, Duration::from_secs(600));
        }
    }

    #[test]
    fn success_clears_reconciling_stalled_and_owned_negative_conditions() {
        let mut c = vec![];
        let p = Policy {
            cleared_on_success: &[FETCH_FAILED_CONDITION],
            ..policy()
        };
        let f =
            Failure::new(GIT_OPERATION_FAILED_REASON, "x").with_condition(FETCH_FAILED_CONDITION);
        decide(
            &mut c,
            Some(1),
            None,
            &Outcome::Failed(f),
            &p,
            History::default(),
        );
        assert_eq!(
            types(&c),
            [
                READY_CONDITION,
                RECONCILING_CONDITION,
                FETCH_FAILED_CONDITION
            ]
        );
        let ok = Outcome::Succeeded {
            reason: RECONCILIATION_SUCCEEDED_REASON,
            message: "Applied revision: main@sha1:abc".into(),
            event: Some((RECONCILIATION_SUCCEEDED_REASON, "done".into())),
        };
        let d = decide(&mut c, Some(1), Some("x"), &ok, &p, History::default());
        assert_eq!(types(&c), [READY_CONDITION]);
        assert_eq!(
            find(&c, READY_CONDITION),
            Some((
                "True",
                RECONCILIATION_SUCCEEDED_REASON,
                "Applied revision: main@sha1:abc"
            ))
        );
        assert_eq!(
            d.events,
            [Event::normal(RECONCILIATION_SUCCEEDED_REASON, "done")]
        );
        assert_eq!(d.requeue, Duration::from_secs(600));
    }

    #[test]
    fn an_unchanged_failure_is_not_announced_again_unless_asked() {
        let f = Outcome::Failed(Failure::new(BUILD_FAILED_REASON, "same"));
        let mut c = vec![];
        let d = decide(
            &mut c,
            None,
            Some("same"),
            &f,
            &policy(),
            History::default(),
        );
        assert!(d.events.is_empty());
        let always = Policy {
            failure_events: Repeat::Always,
            ..policy()
        };
        let d = decide(&mut c, None, Some("same"), &f, &always, History::default());
        assert_eq!(d.events.len(), 1);
    }

    #[test]
    fn dependency_not_ready_blocks_and_a_cycle_stalls() {
        let mut c = vec![];
        let blocked = Outcome::Blocked {
            reason: DEPENDENCY_NOT_READY_REASON,
            message: "dependency 'ns/a' is not ready".into(),
            stalled: false,
        };
        let d = decide(&mut c, None, None, &blocked, &policy(), History::default());
        assert_eq!(types(&c), [READY_CONDITION]);
        assert_eq!(
            find(&c, READY_CONDITION).map(|c| c.1),
            Some(DEPENDENCY_NOT_READY_REASON)
        );
        assert_eq!(d.requeue, Duration::from_secs(30));
        assert_eq!(d.events[0].type_, EventType::Normal);
        assert_eq!(d.result, "blocked");
        let cycle = Outcome::Blocked {
            reason: DEPENDENCY_NOT_READY_REASON,
            message: "cycle".into(),
            stalled: true,
        };
        decide(&mut c, None, None, &cycle, &policy(), History::default());
        assert_eq!(types(&c), [READY_CONDITION, STALLED_CONDITION]);
        // The requeue never exceeds the retry interval.
        let quick = Policy::new(Duration::from_secs(600), Duration::from_secs(5));
        let d = decide(&mut c, None, None, &blocked, &quick, History::default());
        assert_eq!(d.requeue, Duration::from_secs(5));
    }

    #[test]
    fn progressing_is_ready_unknown_and_polls_without_events() {
        let mut c = vec![];
        let p = Outcome::Progressing {
            reason: PROGRESSING_REASON,
            message: "waiting for Deployment/ns/web".into(),
        };
        let d = decide(&mut c, Some(2), None, &p, &policy(), History::default());
        assert_eq!(
            find(&c, READY_CONDITION).map(|c| c.0),
            Some(CONDITION_UNKNOWN)
        );
        assert_eq!(
            find(&c, RECONCILING_CONDITION),
            Some(("True", PROGRESSING_REASON, "waiting for Deployment/ns/web"))
        );
        assert!(d.events.is_empty());
        assert_eq!(d.requeue, Duration::from_secs(2));
    }

    #[test]
    fn exponential_retry_doubles_up_to_the_cap() {
        let p = Policy {
            retry: Retry::Exponential {
                base: Duration::from_millis(750),
                cap: Duration::from_secs(60),
            },
            ..policy()
        };
        let f = Outcome::Failed(Failure::new(GIT_OPERATION_FAILED_REASON, "down"));
        let delays: Vec<_> = (0..8)
            .map(|n| {
                decide(
                    &mut vec![],
                    None,
                    None,
                    &f,
                    &p,
                    History {
                        consecutive_failures: n,
                    },
                )
                .requeue
                .as_millis()
            })
            .collect();
        assert_eq!(
            delays,
            [1500, 3000, 6000, 12000, 24000, 48000, 60000, 60000]
        );
    }
}
