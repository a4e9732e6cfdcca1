//! CEL expressions over objects, for Flux's `spec.healthCheckExprs` (custom
//! health checks of custom resources) and `spec.dependsOn[].readyExpr`.
//!
//! Evaluation uses the `cel` crate (cel-rust). An object's top-level fields
//! (`apiVersion`, `kind`, `metadata`, `spec`, `status`, ...) are the
//! variables of a health-check expression, as in Flux; `readyExpr` gets
//! `self` and `dep`. Not supported by the interpreter: the optional-field
//! syntax (`status.?conditions`); such an expression is refused when
//! compiled, naming itself.

use serde_json::Value;

use crate::{Status, StatusResult};

/// A compiled boolean expression and its text (for messages).
pub struct Expression {
    text: String,
    program: cel::Program,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.text).finish()
    }
}

impl Expression {
    /// Compiles `text`; the error is the parser's, on one line.
    pub fn compile(text: &str) -> Result<Expression, String> {
        let program = cel::Program::compile(text).map_err(|e| {
            let errors: Vec<String> = e
                .errors
                .iter()
                .map(|pe| format!("{} at column {}", pe.msg, pe.pos.1 + 1))
                .collect();
            format!("invalid CEL expression {text:?}: {}", errors.join("; "))
        })?;
        Ok(Expression {
            text: text.to_owned(),
            program,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates with `vars` bound; anything but a boolean result is an error.
    pub fn eval_bool(&self, vars: &[(&str, &Value)]) -> Result<bool, String> {
        let mut ctx = cel::Context::default();
        for (name, value) in vars {
            ctx.add_variable(*name, *value)
                .map_err(|e| format!("binding {name}: {e}"))?;
        }
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "{:?} evaluated to {other:?}, not a boolean",
                self.text
            )),
            Err(e) => Err(format!("evaluating {:?}: {e}", self.text)),
        }
    }

    /// Evaluates with the top-level fields of `obj` as variables.
    pub fn eval_on_object(&self, obj: &Value) -> Result<bool, String> {
        let vars: Vec<(&str, &Value)> = obj
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        self.eval_bool(&vars)
    }
}

/// One entry of `spec.healthCheckExprs`: how to judge objects of one
/// `apiVersion` and `kind`.
#[derive(Debug)]
pub struct CustomHealthCheck {
    api_version: String,
    kind: String,
    current: Expression,
    in_progress: Option<Expression>,
    failed: Option<Expression>,
}

impl CustomHealthCheck {
    /// Compiles an entry; `field` names it in errors
    /// (`spec.healthCheckExprs[0]`).
    pub fn new(
        field: &str,
        api_version: &str,
        kind: &str,
        current: &str,
        in_progress: Option<&str>,
        failed: Option<&str>,
    ) -> Result<CustomHealthCheck, String> {
        let compile = |name: &str, text: &str| {
            Expression::compile(text).map_err(|e| format!("{field}.{name}: {e}"))
        };
        let optional = |name: &str, text: Option<&str>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| compile(name, t))
                .transpose()
        };
        Ok(CustomHealthCheck {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            current: compile("current", current)?,
            in_progress: optional("inProgress", in_progress)?,
            failed: optional("failed", failed)?,
        })
    }

    /// Whether this entry judges `obj` (same apiVersion and kind).
    pub fn applies_to(&self, obj: &Value) -> bool {
        obj.get("apiVersion").and_then(Value::as_str) == Some(self.api_version.as_str())
            && obj.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
    }

    /// The status of `obj` by Flux's rules: InProgress while
    /// `status.observedGeneration` lags `metadata.generation`; then the first
    /// of `inProgress`, `failed`, `current` that holds; InProgress when none
    /// does. An expression that cannot be evaluated (a field not there yet)
    /// gives Unknown with the reason, and the wait goes on.
    pub fn evaluate(&self, obj: &Value) -> StatusResult {
        let result = |status, message: String| StatusResult {
            status,
            message,
            conditions: Vec::new(),
        };
        let observed = obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
        if let (Some(o), Some(g)) = (observed, generation)
            && o != g
        {
            return result(
                Status::InProgress,
                format!("observedGeneration {o} is not the generation {g} yet"),
            );
        }
        let steps = [
            (self.in_progress.as_ref(), Status::InProgress),
            (self.failed.as_ref(), Status::Failed),
            (Some(&self.current), Status::Current),
        ];
        for (expr, status) in steps {
            let Some(expr) = expr else { continue };
            match expr.eval_on_object(obj) {
                Ok(true) => return result(status, format!("{} holds", expr.text())),
                Ok(false) => {}
                Err(e) => return result(Status::Unknown, e),
            }
        }
        result(
            Status::InProgress,
            format!("waiting for {} to hold", self.current.text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn certificate(ready: &str, issuing: &str, generation: i64, observed: i64) -> Value {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "c", "generation": generation},
               "status": {"observedGeneration": observed, "conditions": [
                   {"type": "Ready", "status": ready},
                   {"type": "Issuing", "status": issuing}]}})
    }

    fn check() -> CustomHealthCheck {
        CustomHealthCheck::new(
            "spec.healthCheckExprs[0]",
            "cert-manager.io/v1",
            "Certificate",
            "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')",
            Some("status.conditions.filter(e, e.type == 'Issuing').all(e, e.status == 'True')"),
            Some("status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')"),
        )
        .unwrap()
    }

    #[test]
    fn expressions_are_tried_in_flux_order() {
        let c = check();
        assert_eq!(
            c.evaluate(&certificate("True", "False", 1, 1)).status,
            Status::Current
        );
        // inProgress wins over current.
        assert_eq!(
            c.evaluate(&certificate("True", "True", 1, 1)).status,
            Status::InProgress
        );
        assert_eq!(
            c.evaluate(&certificate("False", "False", 1, 1)).status,
            Status::Failed
        );
        assert_eq!(
            c.evaluate(&certificate("Unknown", "False", 1, 1)).status,
            Status::InProgress
        );
        // A stale status is in progress whatever it says.
        assert_eq!(
            c.evaluate(&certificate("True", "False", 2, 1)).status,
            Status::InProgress
        );
    }

    #[test]
    fn applies_by_api_version_and_kind() {
        let c = check();
        assert!(c.applies_to(&certificate("True", "False", 1, 1)));
        assert!(!c.applies_to(&json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer"})));
        assert!(!c.applies_to(&json!({"apiVersion": "cert-manager.io/v2", "kind": "Certificate"})));
    }

    #[test]
    fn missing_fields_are_unknown_with_the_reason() {
        let c = check();
        let r = c.evaluate(
            &json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                                   "metadata": {"name": "c"}, "status": {}}),
        );
        assert_eq!(r.status, Status::Unknown);
        assert!(r.message.contains("conditions"), "{}", r.message);
    }

    #[test]
    fn bad_expressions_name_their_field() {
        let e = CustomHealthCheck::new("spec.healthCheckExprs[2]", "v1", "X", "a ==", None, None)
            .unwrap_err();
        assert!(
            e.starts_with("spec.healthCheckExprs[2].current: invalid CEL expression"),
            "{e}"
        );
        let e = Expression::compile("status.?phase").unwrap_err();
        assert!(e.contains("status.?phase"), "{e}");
    }

    #[test]
    fn ready_expr_sees_self_and_dep() {
        let dep = json!({"metadata": {"labels": {"app/version": "v1"}}});
        let me = json!({"metadata": {"labels": {"app/version": "v1"}}});
        let e = Expression::compile(
            "dep.metadata.labels['app/version'] == self.metadata.labels['app/version']",
        )
        .unwrap();
        assert!(e.eval_bool(&[("dep", &dep), ("self", &me)]).unwrap());
        let other = json!({"metadata": {"labels": {"app/version": "v2"}}});
        assert!(!e.eval_bool(&[("dep", &other), ("self", &me)]).unwrap());
        let e = Expression::compile("dep.metadata.name").unwrap();
        assert!(e.eval_bool(&[("dep", &dep)]).is_err());
    }
}
