//! The Receiver controller, as notification-controller's: what sluice does not serve is
//! refused by name (Stalled), and so is a filter expression that does not compile
//! (`InvalidCELExpression`); the token is read from `spec.secretRef` (`token` key), and the
//! Receiver is Ready with its webhook path (`Receiver initialized for path: /hook/…`), or not
//! Ready with `TokenNotFound` and no path. Status is written once per change, with
//! notification-controller's field manager, so a cluster can move between the two.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use sluice_api::meta::{self, FluxObject};
use sluice_api::notification::{Receiver, ReceiverStatus, TOKEN_NOT_FOUND_REASON};

use crate::Options;

/// Why a run failed to write what it decided.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status could not be written.
    #[error("writing the status: {0}")]
    Status(#[source] kube::Error),
}

struct Ctx {
    client: Client,
    opts: Options,
}

/// What a Receiver's spec asks that sluice does not do, by field path.
pub fn unsupported(r: &Receiver) -> Option<String> {
    crate::payload::supported(&r.spec.type_).err()
}

/// The token in the Receiver's Secret, worded as Flux words a failure.
pub async fn token(client: &Client, r: &Receiver) -> Result<String, String> {
    let Some(secret_ref) = &r.spec.secret_ref else {
        return Ok(String::new());
    };
    let ns = r.namespace().unwrap_or_default();
    let name = format!("{ns}/{}", secret_ref.name);
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api.get(&secret_ref.name).await.map_err(|e| {
        let cause = match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        };
        format!("unable to read token from secret '{name}' error: {cause}")
    })?;
    match secret.data.as_ref().and_then(|d| d.get("token")) {
        Some(t) => Ok(String::from_utf8_lossy(&t.0).into_owned()),
        None => Err(format!(
            "invalid '{name}' secret data: required fields 'token'"
        )),
    }
}

/// The status a Receiver should have, given its token (or why there is none). Pure.
pub fn status_for(r: &Receiver, token: Result<&str, &str>) -> ReceiverStatus {
    let mut status = r.status.clone().unwrap_or_default();
    let generation = r.metadata.generation;
    status.observed_generation = generation;
    if let Some(t) = meta::reconcile_request(r.metadata.annotations.as_ref()) {
        status.last_handled_reconcile_at = Some(t.to_owned());
    }
    let conditions = status.conditions_mut();
    meta::remove_condition(conditions, meta::RECONCILING_CONDITION);
    let refused = unsupported(r)
        .map(|m| (meta::UNSUPPORTED_FIELD_REASON, m))
        .or_else(|| {
            crate::filter::invalid(r).map(|m| {
                (
                    meta::INVALID_CEL_EXPRESSION_REASON,
                    format!("Reconciliation failed terminally due to configuration error: {m}"),
                )
            })
        });
    let ready = match (refused, token) {
        (Some((reason, m)), _) => {
            meta::set_condition(
                conditions,
                meta::new_condition(
                    meta::STALLED_CONDITION,
                    meta::CONDITION_TRUE,
                    reason,
                    &m,
                    generation,
                ),
            );
            status.webhook_path = None;
            meta::new_condition(
                meta::READY_CONDITION,
                meta::CONDITION_FALSE,
                reason,
                &m,
                generation,
            )
        }
        (None, Err(m)) => {
            meta::remove_condition(conditions, meta::STALLED_CONDITION);
            status.webhook_path = None;
            meta::new_condition(
                meta::READY_CONDITION,
                meta::CONDITION_FALSE,
                TOKEN_NOT_FOUND_REASON,
                m,
                generation,
            )
        }
        (None, Ok(token)) => {
            meta::remove_condition(conditions, meta::STALLED_CONDITION);
            let path = r.webhook_path(token);
            let message = format!("Receiver initialized for path: {path}");
            status.webhook_path = Some(path);
            meta::new_condition(
                meta::READY_CONDITION,
                meta::CONDITION_TRUE,
                meta::SUCCEEDED_REASON,
                &message,
                generation,
            )
        }
    };
    meta::set_condition(status.conditions_mut(), ready);
    status
}

async fn reconcile(r: Arc<Receiver>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let token = if unsupported(&r).is_none() && crate::filter::invalid(&r).is_none() {
        token(&ctx.client, &r).await
    } else {
        Ok(String::new())
    };
    let status = status_for(&r, token.as_deref().map_err(String::as_str));
    if r.status.as_ref() != Some(&status) {
        sluice_runtime::status::patch(&ctx.client, r.as_ref(), &status, crate::FIELD_MANAGER)
            .await
            .map_err(Error::Status)?;
        if let Some(path) = &status.webhook_path {
            tracing::info!(receiver = %r.name_any(), namespace = ?r.namespace(), "Receiver initialized for path: {path}");
        }
    }
    let mut observed = (*r).clone();
    observed.status = Some(status.clone());
    ctx.opts
        .runtime
        .metrics
        .observe(&sluice_runtime::metrics::Observation {
            kind: sluice_api::notification::RECEIVER_KIND,
            namespace: &r.namespace().unwrap_or_default(),
            name: &r.name_any(),
            conditions: observed.conditions(),
            suspended: observed.is_suspended(),
            revision: "",
        });
    if token.is_err() {
        return Ok(Action::requeue(ctx.opts.retry));
    }
    Ok(Action::requeue(
        r.interval().unwrap_or(Duration::from_secs(600)),
    ))
}

fn error_policy(r: Arc<Receiver>, err: &Error, ctx: Arc<Ctx>) -> Action {
    tracing::warn!(receiver = %r.name_any(), "reconcile error: {err}");
    ctx.opts
        .runtime
        .metrics
        .failure(sluice_api::notification::RECEIVER_KIND, "Reconcile");
    Action::requeue(ctx.opts.retry)
}

/// The controller's run (to completion) and the store of Receivers the webhook server looks
/// paths up in.
pub fn controller(
    client: Client,
    opts: &Options,
) -> (
    futures::future::BoxFuture<'static, anyhow::Result<()>>,
    Store<Receiver>,
) {
    let scope = sluice_runtime::WatchScope {
        namespace: opts.namespace.clone(),
        label_selector: opts.label_selector.clone(),
    };
    let api = scope.api::<Receiver>(&client);
    let controller = Controller::new(api.clone(), scope.watcher_config());
    let store = controller.store();
    let gate = opts.runtime.readiness.gate(crate::READINESS_GATE);
    let ready =
        sluice_runtime::readiness::open_when_listable(gate, api, opts.label_selector.clone());
    let ctx = Arc::new(Ctx {
        client,
        opts: opts.clone(),
    });
    let run = async move {
        tracing::info!(namespace = ?ctx.opts.namespace, "starting Receiver controller");
        controller
            .run(reconcile, error_policy, ctx)
            .for_each(|res| async move {
                if let Err(e) = res {
                    tracing::debug!("reconcile: {e}");
                }
            })
            .await;
        ready.abort();
        Ok(())
    }
    .boxed();
    (run, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(spec: serde_json::Value) -> Receiver {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "gitea", "namespace": "flux-system", "generation": 2},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn status_names_the_path_or_the_cause() {
        let r = receiver(
            serde_json::json!({"type": "github", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "flux-system"}]}),
        );
        let s = status_for(&r, Ok("s3cr3t"));
        let path = r.webhook_path("s3cr3t");
        assert_eq!(s.webhook_path.as_deref(), Some(path.as_str()));
        let ready = meta::find_condition(s.conditions.as_deref().unwrap(), "Ready").unwrap();
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.clone()
            ),
            (
                "True",
                "Succeeded",
                format!("Receiver initialized for path: {path}")
            )
        );
        assert_eq!(s.observed_generation, Some(2));
        let s = status_for(
            &r,
            Err("unable to read token from secret 'flux-system/t' error: secrets \"t\" not found"),
        );
        assert_eq!(s.webhook_path, None);
        let ready = meta::find_condition(s.conditions.as_deref().unwrap(), "Ready").unwrap();
        assert_eq!(ready.reason, "TokenNotFound");

        let oidc = receiver(
            serde_json::json!({"type": "cdevents", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "x"}]}),
        );
        let s = status_for(&oidc, Ok(""));
        assert!(meta::is_condition_true(
            s.conditions.as_deref().unwrap(),
            "Stalled"
        ));
        let filtered = receiver(
            serde_json::json!({"type": "generic", "secretRef": {"name": "t"},
            "resourceFilter": "res.metadata.name == req.nme.first",
            "resources": [{"kind": "GitRepository", "name": "x", "filter": "true"}]}),
        );
        assert_eq!(unsupported(&filtered), None);
        assert_eq!(crate::filter::invalid(&filtered), None);
        let bad = receiver(
            serde_json::json!({"type": "generic", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "x", "filter": "ref == 'main'"}]}),
        );
        let s = status_for(&bad, Ok("s3cr3t"));
        assert_eq!(s.webhook_path, None);
        let conditions = s.conditions.as_deref().unwrap();
        let ready = meta::find_condition(conditions, "Ready").unwrap();
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            (
                "False",
                "InvalidCELExpression",
                "Reconciliation failed terminally due to configuration error: invalid filter \
                 expression for resources[0] (kind=\"GitRepository\", name=\"x\"): invalid CEL \
                 expression \"ref == 'main'\": undeclared reference to 'ref'"
            )
        );
        assert!(meta::is_condition_true(conditions, "Stalled"));
    }
}
