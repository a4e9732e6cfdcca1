//! Leader election flags (Flux's `fluxcd/pkg/runtime/leaderelection`) and
//! the wrapper `sluice controller` runs its controllers in.
//!
//! With `--enable-leader-election`, each `sluice controller` process is a
//! candidate for the Lease `sluice-leader-election`
//! (`coordination.k8s.io/v1`) in the pod's namespace (`$POD_NAMESPACE`,
//! else `$RUNTIME_NAMESPACE`, else the service account's, else
//! `flux-system`), as `$POD_NAME` (else the host name) with a random suffix.
//! Only the holder runs the controllers; the others wait, touching nothing
//! but the Lease. See [`sluice_runtime::leader`] for the rules.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgAction, Args};
use sluice_runtime::leader::{self, Config, LeaderElector, Leadership};

/// Leader election options (Flux's flags and defaults).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Leader election")]
pub struct LeaderArgs {
    /// Enable leader election for controller manager. Enabling this will
    /// ensure there is only one active controller manager (Lease
    /// `sluice-leader-election` in `$POD_NAMESPACE`, else
    /// `$RUNTIME_NAMESPACE`, else the service account's namespace, else
    /// `flux-system`).
    #[arg(long = "enable-leader-election", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub enable_leader_election: bool,

    /// Defines if the leader should step down voluntarily on controller
    /// manager shutdown.
    #[arg(long = "leader-election-release-on-cancel", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_name = "BOOL")]
    pub leader_election_release_on_cancel: bool,

    /// Interval at which non-leader candidates will wait to force acquire
    /// leadership (duration string).
    #[arg(long = "leader-election-lease-duration", default_value = "35s", value_parser = parse_flag_duration, value_name = "DURATION")]
    pub leader_election_lease_duration: Duration,

    /// Duration that the leading controller manager will retry refreshing
    /// leadership before giving up (duration string).
    #[arg(long = "leader-election-renew-deadline", default_value = "30s", value_parser = parse_flag_duration, value_name = "DURATION")]
    pub leader_election_renew_deadline: Duration,

    /// Duration the LeaderElector clients should wait between tries of
    /// actions (duration string).
    #[arg(long = "leader-election-retry-period", default_value = "5s", value_parser = parse_flag_duration, value_name = "DURATION")]
    pub leader_election_retry_period: Duration,
}

fn parse_flag_duration(s: &str) -> std::result::Result<Duration, String> {
    sluice_api::meta::parse_duration(s).map_err(|e| e.to_string())
}

impl LeaderArgs {
    /// The election settings: Flux's flags, the Lease of [`leader`]'s
    /// defaults and this process's identity.
    pub fn config(&self) -> Config {
        Config {
            lease_duration: self.leader_election_lease_duration,
            renew_deadline: self.leader_election_renew_deadline,
            retry_period: self.leader_election_retry_period,
            release_on_cancel: self.leader_election_release_on_cancel,
            ..Config::new(
                &leader::default_namespace(),
                leader::DEFAULT_LEASE_NAME,
                &leader::default_identity(),
            )
        }
    }
}

/// Runs `run` (the controllers) as `sluice controller` should:
///
/// - leader election disabled: at once; it is told of `shutdown` through
///   [`Leadership::shutdown`];
/// - enabled: once this process holds the Lease. A `shutdown` while waiting
///   returns `Ok(())` without running anything. On losing the Lease the
///   work is dropped at once and an error returned (exit non-zero, as
///   controller-runtime does); when the work ends cleanly the Lease is
///   released (unless `--leader-election-release-on-cancel=false`), so a
///   standby takes over at once.
pub async fn run_as_leader<S, F, Fut>(
    args: &LeaderArgs,
    client: kube::Client,
    shutdown: S,
    run: F,
) -> Result<()>
where
    S: Future<Output = ()>,
    F: FnOnce(Leadership) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if !args.enable_leader_election {
        return leader::run_unelected(shutdown, run).await;
    }
    let config = args.config();
    tracing::info!(
        lease = %format!("{}/{}", config.namespace, config.name),
        identity = %config.identity,
        lease_duration = ?config.lease_duration,
        renew_deadline = ?config.renew_deadline,
        retry_period = ?config.retry_period,
        "leader election enabled: waiting for the Lease"
    );
    let elector = LeaderElector::new(client, config)?;
    match leader::run_as_leader(elector, shutdown, run).await? {
        None => Ok(()),
        Some(result) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: LeaderArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<LeaderArgs, clap::Error> {
        use clap::Parser;
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).map(|w| w.args)
    }

    #[test]
    fn defaults_are_fluxs() {
        use clap::CommandFactory;
        Wrapper::command().debug_assert();
        let a = parse(&[]).unwrap();
        assert!(!a.enable_leader_election);
        assert!(a.leader_election_release_on_cancel);
        assert_eq!(a.leader_election_lease_duration, Duration::from_secs(35));
        assert_eq!(a.leader_election_renew_deadline, Duration::from_secs(30));
        assert_eq!(a.leader_election_retry_period, Duration::from_secs(5));
        let c = a.config();
        assert_eq!(c.name, "sluice-leader-election");
        c.validate().unwrap();
    }

    #[test]
    fn enable_flag_is_a_go_style_bool() {
        assert!(
            parse(&["--enable-leader-election"])
                .unwrap()
                .enable_leader_election
        );
        assert!(
            parse(&["--enable-leader-election=true"])
                .unwrap()
                .enable_leader_election
        );
        assert!(
            !parse(&["--enable-leader-election=false"])
                .unwrap()
                .enable_leader_election
        );
        assert!(
            !parse(&["--leader-election-release-on-cancel=false"])
                .unwrap()
                .leader_election_release_on_cancel
        );
        assert!(parse(&["--enable-leader-election=maybe"]).is_err());
    }

    #[test]
    fn durations_parse_as_go_durations() {
        let a = parse(&[
            "--leader-election-lease-duration",
            "4s",
            "--leader-election-renew-deadline=3s",
            "--leader-election-retry-period",
            "500ms",
        ])
        .unwrap();
        assert_eq!(a.leader_election_lease_duration, Duration::from_secs(4));
        assert_eq!(a.leader_election_renew_deadline, Duration::from_secs(3));
        assert_eq!(a.leader_election_retry_period, Duration::from_millis(500));
        a.config().validate().unwrap();
        assert!(parse(&["--leader-election-retry-period", "5"]).is_err());
    }

    #[test]
    fn inconsistent_durations_are_refused() {
        let a = parse(&["--leader-election-renew-deadline=40s"]).unwrap();
        let err = a.config().validate().unwrap_err().to_string();
        assert!(err.contains("renew deadline"), "{err}");
    }
}
