//! CEL expressions over objects, for Flux's `spec.healthCheckExprs` (custom
//! health checks of custom resources) and `spec.dependsOn[].readyExpr`.
//!
//! Evaluation uses the `cel` crate (cel-rust), in Flux's environment: the
//! standard library, optional types (`status.?conditions.orValue([])`) and the
//! strings and encoders extensions. An object's top-level fields
//! (`apiVersion`, `kind`, `metadata`, `spec`, `status`, ...) are the
//! variables of a health-check expression, as in Flux; `readyExpr` gets
//! `self` and `dep`; a Receiver's filters get `res` and `req`.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde_json::Value;

use crate::{Status, StatusResult};

/// The environment Flux's expressions are compiled in (`fluxcd/pkg/runtime/cel`): the
/// standard library with the strings and encoders extensions (`'A-b'.lowerAscii()`,
/// `uid.split('-')`, `base64.decode(...)`), optional types parsed. Flux's sets extension
/// (`sets.contains`) has no counterpart in the interpreter.
fn env() -> std::sync::Arc<cel::Env> {
    static ENV: std::sync::LazyLock<std::sync::Arc<cel::Env>> = std::sync::LazyLock::new(|| {
        let mut env = cel::Env::stdlib();
        // Registering an extension on the standard library cannot clash with it; were it
        // ever to, the expressions would simply not find those functions.
        let _ = env.add_extension(cel::extensions::strings);
        let _ = env.add_extension(cel::extensions::encoders);
        std::sync::Arc::new(env)
    });
    ENV.clone()
}

/// A compiled expression and its text (for messages).
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
        let program = env().compile(text).map_err(|e| {
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

    /// Compiles `text`, refusing a reference to any variable but `variables` (as cel-go's
    /// checker does with declared variables), so that a misspelt name fails when the
    /// expression is read rather than when it is first evaluated.
    pub fn compile_with_variables(text: &str, variables: &[&str]) -> Result<Expression, String> {
        let expression = Expression::compile(text)?;
        let mut free = Vec::new();
        free_variables(expression.program.expression(), &mut Vec::new(), &mut free);
        // CEL's type names read as identifiers (`type(x) == string`).
        const TYPES: &[&str] = &[
            "bool",
            "bytes",
            "double",
            "dyn",
            "int",
            "list",
            "map",
            "null_type",
            "string",
            "type",
            "uint",
        ];
        if let Some(unknown) = free
            .iter()
            .find(|v| !variables.contains(v) && !TYPES.contains(v))
        {
            return Err(format!(
                "invalid CEL expression {text:?}: undeclared reference to '{unknown}'"
            ));
        }
        Ok(expression)
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates with `vars` bound.
    fn eval(&self, vars: &[(&str, &Value)]) -> Result<cel::Value, String> {
        let mut ctx = cel::Context::with_env(env());
        for (name, value) in vars {
            ctx.add_variable(*name, *value)
                .map_err(|e| format!("binding {name}: {e}"))?;
        }
        self.program
            .execute(&ctx)
            .map_err(|e| format!("evaluating {:?}: {e}", self.text))
    }

    /// Evaluates with `vars` bound; anything but a string result is an error.
    pub fn eval_string(&self, vars: &[(&str, &Value)]) -> Result<String, String> {
        match self.eval(vars)? {
            cel::Value::String(s) => Ok(s.to_string()),
            other => Err(format!(
                "{:?} evaluated to {other:?}, not a string",
                self.text
            )),
        }
    }

    /// Evaluates with `vars` bound; anything but a boolean result is an error.
    pub fn eval_bool(&self, vars: &[(&str, &Value)]) -> Result<bool, String> {
        match self.eval(vars)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "{:?} evaluated to {other:?}, not a boolean",
                self.text
            )),
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

/// The namespaces of functions in Flux's environment (`base64.encode`, `strings.quote`,
/// `optional.of`; `sets.contains` is Flux's too, and fails when evaluated here).
const FUNCTION_NAMESPACES: &[&str] = &["base64", "optional", "sets", "strings"];

/// The variables `e` reads that no comprehension around them binds (`c` in
/// `req.commits.exists(c, c.added.size() > 0)` is bound; `req` is free), in order of reading.
fn free_variables<'a>(e: &'a IdedExpr, bound: &mut Vec<&'a str>, free: &mut Vec<&'a str>) {
    match &e.expr {
        Expr::Ident(name) => {
            // `@`-names are the parser's own (a comprehension's result, ...).
            if !name.starts_with('@')
                && !bound.contains(&name.as_str())
                && !free.contains(&name.as_str())
            {
                free.push(name);
            }
        }
        Expr::Call(call) => {
            // `base64.encode(x)` parses as a call on `base64`: a function's namespace, not a
            // variable.
            let namespaced = call.target.as_deref().is_some_and(|t| {
                matches!(&t.expr, Expr::Ident(n) if FUNCTION_NAMESPACES.contains(&n.as_str())
                    && !bound.contains(&n.as_str()))
            });
            if let Some(target) = call.target.as_deref().filter(|_| !namespaced) {
                free_variables(target, bound, free);
            }
            for arg in &call.args {
                free_variables(arg, bound, free);
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, free);
            free_variables(&c.accu_init, bound, free);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                bound.push(second);
            }
            bound.push(&c.accu_var);
            for inner in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(inner, bound, free);
            }
            bound.truncate(depth);
        }
        Expr::List(list) => {
            for item in &list.elements {
                free_variables(item, bound, free);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::StructField(field) => free_variables(&field.value, bound, free),
                    EntryExpr::MapEntry(entry) => {
                        free_variables(&entry.key, bound, free);
                        free_variables(&entry.value, bound, free);
                    }
                }
            }
        }
        Expr::Select(select) => free_variables(&select.operand, bound, free),
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(field) = &entry.expr {
                    free_variables(&field.value, bound, free);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
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

    #[test]
    fn fluxs_extensions_are_there() {
        let e = Expression::compile(
            "(obj.kind + '/' + obj.uid.split('-')[0]).lowerAscii() + '/' + base64.encode(b'hi')",
        )
        .unwrap();
        let obj = serde_json::json!({"kind": "Kustomization", "uid": "7B1A-44-x"});
        assert_eq!(
            e.eval_string(&[("obj", &obj)]),
            Ok("kustomization/7b1a/aGk=".to_string())
        );
        let err = e.eval_bool(&[("obj", &obj)]).unwrap_err();
        assert!(err.ends_with("not a boolean"), "{err}");
    }

    #[test]
    fn declared_variables_are_the_only_ones_read() {
        let vars = ["res", "req"];
        for ok in [
            "res.metadata.name == req.repository.name",
            "req.commits.exists(c, c.added.exists(f, f.startsWith(res.metadata.name)))",
            "[1, 2].map(x, x * 2).size() == 2 && type(req) == map",
            "has(res.metadata.labels) && {'a': req}.size() == 1",
            "base64.encode(b'x') == req.token && strings.quote(res.metadata.name) != ''",
            "optional.of(req).hasValue()",
        ] {
            let e = Expression::compile_with_variables(ok, &vars);
            assert!(e.is_ok(), "{ok}: {e:?}");
        }
        let err = Expression::compile_with_variables("res.metadata.name == request.name", &vars)
            .unwrap_err();
        assert!(err.ends_with("undeclared reference to 'request'"), "{err}");
        // A function's namespace is not a variable anywhere else.
        let err = Expression::compile_with_variables("base64 == req", &vars).unwrap_err();
        assert!(err.ends_with("undeclared reference to 'base64'"), "{err}");
        // A comprehension's variable is bound only inside it.
        let err = Expression::compile_with_variables("req.items.exists(c, c > 1) && c == 2", &vars)
            .unwrap_err();
        assert!(err.ends_with("undeclared reference to 'c'"), "{err}");
        let e = Expression::compile_with_variables("res.metadata.name == req.name", &vars).unwrap();
        let res = serde_json::json!({"metadata": {"name": "app"}});
        let req = serde_json::json!({"name": "app"});
        assert_eq!(e.eval_bool(&[("res", &res), ("req", &req)]), Ok(true));
    }
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
        // Flux's optional types: `.?` and `orValue`.
        let e = Expression::compile("status.?phase.orValue('none') == 'none'").unwrap();
        let obj = json!({"status": {}});
        assert_eq!(e.eval_bool(&[("status", &obj["status"])]), Ok(true));
        let obj = json!({"status": {"phase": "Ready"}});
        assert_eq!(e.eval_bool(&[("status", &obj["status"])]), Ok(false));
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
