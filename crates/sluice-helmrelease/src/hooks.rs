//! Chart hooks run as Helm v4's `execHook` runs them: the hooks of one event in order of weight,
//! then name; each one's old object deleted first (`before-hook-creation`, the default policy),
//! created, and waited for (a Job until it completes, a Pod until it succeeds; other kinds are
//! done once created); its `lastRun` recorded in the release as it goes; after all succeeded,
//! those with `hook-succeeded` deleted (in reverse order); after a failure, the failed one
//! deleted if `hook-failed` and the earlier ones if `hook-succeeded`.
//!
//! Errors are worded as Helm's (`job migrate failed: BackoffLimitExceeded`), so the action's
//! message (`failed pre-install: ...`) reads as Flux's does.

use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::discovery::Scope;
use serde_json::Value;
use sluice_apply::{Applier, ObjectRef};
use sluice_helm::release::{Hook, HookExecution, Release};

use crate::storage::Storage;

/// Helm's default delete policy, and the policy deleting a hook's object before it is created.
pub const BEFORE_HOOK_CREATION: &str = "before-hook-creation";
/// Deletes a hook's object once every hook of its event succeeded.
pub const HOOK_SUCCEEDED: &str = "hook-succeeded";
/// Deletes a hook's object when it failed.
pub const HOOK_FAILED: &str = "hook-failed";

/// How hooks run.
pub struct Runner<'a> {
    pub applier: &'a Applier,
    pub storage: &'a Storage,
    pub field_manager: &'a str,
    /// The time each hook may take.
    pub timeout: Duration,
    /// How often a running hook is looked at.
    pub poll: Duration,
    pub now_unix: i64,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Runner<'_> {
    /// Runs the hooks of `event` of `release` (none: nothing to do), recording their runs.
    pub async fn run(&self, release: &mut Release, event: &str) -> Result<(), String> {
        let mut order: Vec<usize> = (0..release.hooks.len())
            .filter(|&i| release.hooks[i].events.iter().any(|e| e == event))
            .collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&release.hooks[a], &release.hooks[b]);
            x.weight.cmp(&y.weight).then_with(|| x.name.cmp(&y.name))
        });
        for (n, &i) in order.iter().enumerate() {
            let hook = &mut release.hooks[i];
            if hook.delete_policies.is_empty() {
                hook.delete_policies.push(BEFORE_HOOK_CREATION.into());
            }
            let object = self.object(hook, &release.namespace).await?;
            self.delete_by_policy(hook, &object, BEFORE_HOOK_CREATION)
                .await?;
            let hook = &mut release.hooks[i];
            hook.last_run = HookExecution {
                started_at: Some(now()),
                completed_at: None,
                phase: "Running".into(),
            };
            self.record(release).await;
            let hook = &mut release.hooks[i];
            hook.last_run.phase = "Unknown".into();
            let outcome = match self.create(&object).await {
                Ok(()) => self.wait(&object).await,
                Err(e) => Err(format!("warning: Hook {event} {} failed: {e}", hook.path)),
            };
            let hook = &mut release.hooks[i];
            hook.last_run.completed_at = Some(now());
            if let Err(e) = outcome {
                hook.last_run.phase = "Failed".into();
                let failed = hook.clone();
                self.record(release).await;
                let _ = self.delete_by_policy(&failed, &object, HOOK_FAILED).await;
                for &j in &order[..n] {
                    let earlier = release.hooks[j].clone();
                    if let Ok(o) = self.object(&earlier, &release.namespace).await {
                        self.delete_by_policy(&earlier, &o, HOOK_SUCCEEDED).await?;
                    }
                }
                return Err(e);
            }
            hook.last_run.phase = "Succeeded".into();
        }
        self.record(release).await;
        for &i in order.iter().rev() {
            let hook = release.hooks[i].clone();
            let object = self.object(&hook, &release.namespace).await?;
            self.delete_by_policy(&hook, &object, HOOK_SUCCEEDED)
                .await?;
        }
        Ok(())
    }

    /// Records the hooks' progress in the release, as Helm does; a failure to record is not
    /// the hook's failure (Helm ignores it too).
    async fn record(&self, release: &Release) {
        if let Err(e) = self.storage.update(release, self.now_unix).await {
            tracing::warn!(release = %release.name, "recording hook progress: {e}");
        }
    }

    async fn object(&self, hook: &Hook, namespace: &str) -> Result<HookObject, String> {
        let docs = sluice_kustomize::yaml::parse_manifests(&hook.manifest).map_err(|e| {
            format!(
                "unable to build kubernetes object for hook {}: {e}",
                hook.path
            )
        })?;
        let Some(doc) = docs.first() else {
            return Err(format!(
                "unable to build kubernetes object for hook {}: empty manifest",
                hook.path
            ));
        };
        let mut value = sluice_render::pipeline::to_json(doc);
        let mut r =
            crate::actions::object_ref(&value).map_err(|e| format!("hook {}: {e}", hook.path))?;
        let (resource, scope) = self
            .applier
            .resolve(&r)
            .await
            .map_err(|e| format!("hook {}: {e}", hook.path))?;
        let namespaced = scope == Scope::Namespaced;
        if namespaced && r.namespace.is_empty() {
            r.namespace = namespace.to_owned();
            value["metadata"]["namespace"] = Value::String(namespace.to_owned());
        }
        let client = self.applier.client().clone();
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(client, &r.namespace, &resource)
        } else {
            Api::all_with(client, &resource)
        };
        Ok(HookObject {
            r,
            api,
            manifest: value,
        })
    }

    async fn create(&self, o: &HookObject) -> Result<(), String> {
        let params = PatchParams::apply(self.field_manager).force();
        o.api
            .patch(&o.r.name, &params, &Patch::Apply(&o.manifest))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Waits until the hook's object is done: a Job complete, a Pod succeeded.
    async fn wait(&self, o: &HookObject) -> Result<(), String> {
        if o.r.kind != "Job" && o.r.kind != "Pod" {
            return Ok(());
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let live = o.api.get_opt(&o.r.name).await.map_err(|e| e.to_string())?;
            let status = live
                .as_ref()
                .and_then(|d| d.data.get("status"))
                .cloned()
                .unwrap_or(Value::Null);
            match (o.r.kind.as_str(), done(&o.r, &status)) {
                (_, Some(result)) => return result,
                (kind, None) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{} {}: timed out after {}s waiting for the {} to finish",
                        kind.to_lowercase(),
                        o.r.name,
                        self.timeout.as_secs(),
                        kind
                    ));
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    async fn delete_by_policy(
        &self,
        hook: &Hook,
        o: &HookObject,
        policy: &str,
    ) -> Result<(), String> {
        if hook.kind == "CustomResourceDefinition"
            || !hook.delete_policies.iter().any(|p| p == policy)
        {
            return Ok(());
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match o.api.delete(&o.r.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(format!("deleting hook {}: {e}", o.r.subject())),
        }
        // Wait until it is gone, so that its successor can be created.
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match o.api.get_opt(&o.r.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => tokio::time::sleep(self.poll).await,
                Err(e) => return Err(format!("deleting hook {}: {e}", o.r.subject())),
            }
        }
        Err(format!(
            "deleting hook {}: still present after {}s",
            o.r.subject(),
            self.timeout.as_secs()
        ))
    }
}

struct HookObject {
    r: ObjectRef,
    api: Api<DynamicObject>,
    manifest: Value,
}

/// Whether a Job or Pod is done, from its status: `Some(Ok)` succeeded, `Some(Err)` failed
/// (worded as Helm's), `None` still running.
fn done(r: &ObjectRef, status: &Value) -> Option<Result<(), String>> {
    match r.kind.as_str() {
        "Job" => {
            let conditions = status.get("conditions").and_then(Value::as_array)?;
            for c in conditions {
                let is = |t: &str| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                };
                if is("Complete") {
                    return Some(Ok(()));
                }
                if is("Failed") {
                    let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
                    return Some(Err(format!("job {} failed: {reason}", r.name)));
                }
            }
            None
        }
        _ => match status.get("phase").and_then(Value::as_str) {
            Some("Succeeded") => Some(Ok(())),
            Some("Failed") => Some(Err(format!("pod {} failed", r.name))),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_and_pods_finish_as_helm_reads_them() {
        let job = ObjectRef::new("batch", "v1", "Job", "ns", "migrate");
        let pod = ObjectRef::new("", "v1", "Pod", "ns", "check");
        assert_eq!(done(&job, &json!({})), None);
        assert_eq!(
            done(
                &job,
                &json!({"conditions": [{"type": "Complete", "status": "True"}]})
            ),
            Some(Ok(()))
        );
        assert_eq!(
            done(
                &job,
                &json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
            ),
            Some(Err("job migrate failed: BackoffLimitExceeded".into()))
        );
        assert_eq!(done(&pod, &json!({"phase": "Running"})), None);
        assert_eq!(done(&pod, &json!({"phase": "Succeeded"})), Some(Ok(())));
        assert_eq!(
            done(&pod, &json!({"phase": "Failed"})),
            Some(Err("pod check failed".into()))
        );
    }
}
