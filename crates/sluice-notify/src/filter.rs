//! A Receiver's CEL filters, as notification-controller evaluates them: `spec.resourceFilter`
//! and each `spec.resources[].filter` are boolean expressions over `res` (the resource's
//! `apiVersion`, `kind` and `metadata`) and `req` (the webhook's JSON body, `{}` when the
//! request is not JSON). A resource is asked to reconcile only when every expression set for
//! it holds. Expressions are checked when the Receiver is reconciled; one that does not
//! compile, or reads a variable other than `res` and `req`, makes the Receiver Stalled.

use serde_json::Value;
use sluice_api::notification::Receiver;
use sluice_kstatus::cel::Expression;

/// The variables an expression may read.
const VARIABLES: &[&str] = &["res", "req"];

/// Why a Receiver's filters are refused (notification-controller's wording), if they are.
pub fn invalid(r: &Receiver) -> Option<String> {
    if let Some(text) = r.spec.resource_filter.as_deref().filter(|t| !t.is_empty())
        && let Err(e) = Expression::compile_with_variables(text, VARIABLES)
    {
        return Some(format!("invalid resourceFilter expression: {e}"));
    }
    r.spec.resources.iter().enumerate().find_map(|(i, res)| {
        let text = res.filter.as_deref().filter(|t| !t.is_empty())?;
        Expression::compile_with_variables(text, VARIABLES)
            .err()
            .map(|e| {
                format!(
                    "invalid filter expression for resources[{i}] (kind={:?}, name={:?}): {e}",
                    res.kind.as_str(),
                    res.name
                )
            })
    })
}

/// The filters of one webhook request: the body read once, the expressions compiled once.
pub struct Filters {
    req: Value,
    top: Option<Expression>,
    per_resource: Vec<Option<Expression>>,
}

impl Filters {
    /// The filters `r` sets, for a request with these headers and body; `None` when it sets
    /// none (every resource is accepted). A JSON body that cannot be read is an error.
    pub fn new(
        r: &Receiver,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Option<Filters>, String> {
        let compile = |text: Option<&str>| {
            text.filter(|t| !t.is_empty())
                .map(|t| Expression::compile_with_variables(t, VARIABLES))
                .transpose()
        };
        let top = compile(r.spec.resource_filter.as_deref())?;
        let per_resource = r
            .spec
            .resources
            .iter()
            .map(|res| compile(res.filter.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        if top.is_none() && per_resource.iter().all(Option::is_none) {
            return Ok(None);
        }
        let req = if is_json(headers) {
            serde_json::from_slice(body)
                .map_err(|e| format!("failed to parse request body as JSON: {e}"))?
        } else {
            Value::Object(Default::default())
        };
        Ok(Some(Filters {
            req,
            top,
            per_resource,
        }))
    }

    /// Whether any expression applies to resource `index` of the Receiver's list (when none
    /// does, it is accepted without being read).
    pub fn apply_to(&self, index: usize) -> bool {
        self.top.is_some() || self.per_resource.get(index).is_some_and(Option::is_some)
    }

    /// Whether resource `index` of the Receiver's list accepts `res` (its `apiVersion`, `kind`
    /// and `metadata`); an expression that fails to evaluate is an error.
    pub fn accepts(&self, index: usize, res: &Value) -> Result<bool, String> {
        let own = self.per_resource.get(index).and_then(Option::as_ref);
        for e in self.top.iter().chain(own) {
            if !e.eval_bool(&[("res", res), ("req", &self.req)])? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Whether the request says its body is JSON (Go's `mime.ParseMediaType` of each
/// comma-separated `Content-Type` value, stopping at the first it cannot read).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    for part in value.split(',') {
        let media = part.split(';').next().unwrap_or_default().trim();
        if media.is_empty() || !media.contains('/') {
            return false;
        }
        if media.eq_ignore_ascii_case("application/json") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn receiver(spec: Value) -> Receiver {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "gitea", "namespace": "flux-system"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        h
    }

    #[test]
    fn both_filters_must_hold() {
        let r = receiver(serde_json::json!({
        "type": "generic", "secretRef": {"name": "t"},
        "resourceFilter": "res.metadata.name == req.app",
        "resources": [
            {"kind": "GitRepository", "name": "*", "matchLabels": {"a": "b"}},
            {"kind": "Kustomization", "name": "*", "matchLabels": {"a": "b"},
                "filter": "has(res.metadata.labels) && res.metadata.labels.tier == 'edge'"},
        ]}));
        assert_eq!(invalid(&r), None);
        let f = Filters::new(&r, &json_headers(), br#"{"app": "web"}"#)
            .unwrap()
            .expect("filters are set");
        let web = serde_json::json!({"metadata": {"name": "web", "labels": {"tier": "edge"}}});
        let db = serde_json::json!({"metadata": {"name": "db", "labels": {"tier": "edge"}}});
        let core = serde_json::json!({"metadata": {"name": "web", "labels": {"tier": "core"}}});
        assert_eq!(f.accepts(0, &web), Ok(true));
        assert_eq!(f.accepts(0, &db), Ok(false));
        assert_eq!(f.accepts(1, &web), Ok(true));
        assert_eq!(f.accepts(1, &core), Ok(false));
        assert!(f.apply_to(0) && f.apply_to(1));
        // An expression that cannot be evaluated is an error, not a silent no.
        let unlabelled = serde_json::json!({"metadata": {"name": "web"}});
        let top_only = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resourceFilter": "res.metadata.labels.tier == 'edge'",
            "resources": [{"kind": "GitRepository", "name": "x"}]}));
        let f = Filters::new(&top_only, &json_headers(), b"{}")
            .unwrap()
            .unwrap();
        assert!(f.accepts(0, &unlabelled).is_err());
    }

    #[test]
    fn the_body_is_read_only_when_it_is_json() {
        let r = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resourceFilter": "size(req) == 0",
            "resources": [{"kind": "GitRepository", "name": "x"}]}));
        let f = Filters::new(&r, &HeaderMap::new(), b"not json")
            .unwrap()
            .unwrap();
        let res = serde_json::json!({"metadata": {"name": "x"}});
        assert_eq!(f.accepts(0, &res), Ok(true));
        let err = Filters::new(&r, &json_headers(), b"not json")
            .err()
            .unwrap();
        assert!(
            err.starts_with("failed to parse request body as JSON"),
            "{err}"
        );
        let none = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "x"}]}));
        assert!(
            Filters::new(&none, &json_headers(), b"not json")
                .unwrap()
                .is_none()
        );
        // A resource without an expression of its own, and no top-level one: not read.
        let second_only = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "x"},
                {"kind": "GitRepository", "name": "y", "filter": "true"}]}));
        let f = Filters::new(&second_only, &json_headers(), b"{}")
            .unwrap()
            .unwrap();
        assert!(!f.apply_to(0) && f.apply_to(1));
    }

    #[test]
    fn bad_expressions_are_named() {
        let r = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resourceFilter": "res.metadata.name ==",
            "resources": [{"kind": "GitRepository", "name": "x"}]}));
        let m = invalid(&r).unwrap();
        assert!(
            m.starts_with("invalid resourceFilter expression: invalid CEL expression"),
            "{m}"
        );
        let r = receiver(serde_json::json!({
            "type": "generic", "secretRef": {"name": "t"},
            "resources": [{"kind": "GitRepository", "name": "x"},
                {"kind": "Kustomization", "name": "apps", "filter": "body.ref == 'main'"}]}));
        assert_eq!(
            invalid(&r).unwrap(),
            "invalid filter expression for resources[1] (kind=\"Kustomization\", name=\"apps\"): \
             invalid CEL expression \"body.ref == 'main'\": undeclared reference to 'body'"
        );
    }
}
