//! Why a cert-manager `Certificate` is not Ready, followed down its chain: the newest
//! `CertificateRequest` it made, that request's ACME `Order`, the order's `Challenge`s, to the
//! challenge's own reason, with the usual remedy named (an HTTP-01 self-check answered by
//! something in front of the cluster: use DNS-01). Pure: the caller lists the objects.

use serde_json::Value;

/// One hop: kind, namespace, name, what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub message: String,
}

/// The chain from a Certificate to its root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Ready=True.
    pub ready: bool,
    /// From the Certificate down.
    pub hops: Vec<Hop>,
    /// What usually fixes the root cause, when it is recognised.
    pub hint: Option<String>,
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn condition<'a>(v: &'a Value, type_: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn owned_by(child: &Value, owner: &Value) -> bool {
    let uid = s(owner, "/metadata/uid");
    !uid.is_empty()
        && child
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

fn hop(kind: &str, v: &Value, message: String) -> Hop {
    Hop {
        kind: kind.into(),
        namespace: s(v, "/metadata/namespace").into(),
        name: s(v, "/metadata/name").into(),
        message,
    }
}

/// `reason: message` of a condition, or what is there.
fn describe(c: Option<&Value>) -> String {
    match c {
        None => "no Ready condition yet".into(),
        Some(c) => {
            let (reason, message) = (s(c, "/reason"), s(c, "/message"));
            match (reason.is_empty(), message.is_empty()) {
                (false, false) => format!("{reason}: {message}"),
                (false, true) => reason.into(),
                _ => message.into(),
            }
        }
    }
}

/// Walks `cert` through `requests`, `orders` and `challenges` (the namespace's objects of each
/// kind).
pub fn certificate_chain(
    cert: &Value,
    requests: &[Value],
    orders: &[Value],
    challenges: &[Value],
) -> Chain {
    let ready = condition(cert, "Ready");
    if ready.is_some_and(|c| c["status"] == "True") {
        return Chain {
            ready: true,
            hops: vec![hop("Certificate", cert, describe(ready))],
            hint: None,
        };
    }
    let mut hops = vec![hop("Certificate", cert, describe(ready))];
    let name = s(cert, "/metadata/name");
    // The newest request: the highest revision annotation among those it owns.
    let revision = |r: &Value| {
        s(
            r,
            "/metadata/annotations/cert-manager.io~1certificate-revision",
        )
        .parse::<u64>()
        .unwrap_or(0)
    };
    let request = requests
        .iter()
        .filter(|r| {
            owned_by(r, cert)
                || s(r, "/metadata/annotations/cert-manager.io~1certificate-name") == name
        })
        .max_by_key(|r| revision(r));
    let Some(request) = request else {
        let hint = Some(
            "no CertificateRequest was made: is cert-manager running, and is the Certificate's issuerRef right?"
                .to_string(),
        );
        return Chain {
            ready: false,
            hops,
            hint,
        };
    };
    let request_ready = condition(request, "Ready");
    let mut message = describe(request_ready);
    for extra in ["Denied", "InvalidRequest"] {
        if let Some(c) = condition(request, extra).filter(|c| c["status"] == "True") {
            message = format!("{extra}: {}", s(c, "/message"));
        }
    }
    hops.push(hop("CertificateRequest", request, message.clone()));
    let mut hint = None;
    if message.contains("issuer") && message.contains("not found") {
        hint = Some(format!(
            "the issuer {}/{} does not exist: create it, or fix the Certificate's issuerRef",
            s(request, "/spec/issuerRef/kind"),
            s(request, "/spec/issuerRef/name")
        ));
    } else if message.contains("does not have a Ready status condition") {
        hint = Some(format!(
            "the issuer {} {} is not ready: see `kubectl describe {} {}`",
            s(request, "/spec/issuerRef/kind"),
            s(request, "/spec/issuerRef/name"),
            s(request, "/spec/issuerRef/kind").to_ascii_lowercase(),
            s(request, "/spec/issuerRef/name")
        ));
    }
    let Some(order) = orders.iter().find(|o| owned_by(o, request)) else {
        return Chain {
            ready: false,
            hops,
            hint,
        };
    };
    let state = s(order, "/status/state");
    let reason = s(order, "/status/reason");
    hops.push(hop(
        "Order",
        order,
        match (state.is_empty(), reason.is_empty()) {
            (true, _) => "no state yet".into(),
            (false, true) => format!("state {state}"),
            (false, false) => format!("state {state}: {reason}"),
        },
    ));
    for ch in challenges.iter().filter(|c| owned_by(c, order)) {
        let state = s(ch, "/status/state");
        if state == "valid" {
            continue;
        }
        let type_ = s(ch, "/spec/type");
        let domain = s(ch, "/spec/dnsName");
        let reason = s(ch, "/status/reason");
        hops.push(hop(
            "Challenge",
            ch,
            format!(
                "{type_} for {domain}, state {}: {}",
                if state.is_empty() { "pending" } else { state },
                if reason.is_empty() {
                    "no reason given yet"
                } else {
                    reason
                }
            ),
        ));
        if hint.is_none() {
            hint = challenge_hint(type_, domain, reason);
        }
    }
    Chain {
        ready: false,
        hops,
        hint,
    }
}

/// The remedy for a challenge's reason, when it is a known one.
fn challenge_hint(type_: &str, domain: &str, reason: &str) -> Option<String> {
    let lower = reason.to_ascii_lowercase();
    if type_ == "HTTP-01" && lower.contains("wrong status code") {
        let code = reason
            .split('\'')
            .nth(1)
            .filter(|c| c.chars().all(|d| d.is_ascii_digit()))
            .unwrap_or("?");
        let why = match code {
            "521" | "522" | "523" | "525" | "526" => {
                " (a 52x code is Cloudflare's: its proxy answers, not the cluster)"
            }
            "404" => {
                " (the request reached a web server, but not the solver's Ingress: check the ingress class)"
            }
            _ => "",
        };
        return Some(format!(
            "the HTTP-01 self-check of http://{domain}/.well-known/acme-challenge/… got HTTP {code}{why}: something in front of the cluster answers instead of the solver. Use a DNS-01 solver (works behind proxies and for private clusters), or let port 80 reach the ingress directly"
        ));
    }
    if type_ == "HTTP-01"
        && (lower.contains("no such host")
            || lower.contains("timeout")
            || lower.contains("connection refused"))
    {
        return Some(format!(
            "the HTTP-01 self-check could not reach http://{domain}/ from inside the cluster: check that {domain} resolves to the ingress and port 80 is open (hairpin NAT on home routers often is not); DNS-01 avoids this"
        ));
    }
    if type_ == "DNS-01"
        && (lower.contains("propagat") || lower.contains("nxdomain") || lower.contains("record"))
    {
        return Some(format!(
            "the DNS-01 TXT record for _acme-challenge.{domain} is not visible yet: check the DNS provider's credentials and that the recursive nameservers cert-manager uses see the zone"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> (Value, Vec<Value>, Vec<Value>, Vec<Value>) {
        let cert = json!({"metadata": {"name": "web-tls", "namespace": "apps", "uid": "c1"},
            "spec": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "DoesNotExist",
                "message": "Issuing certificate as Secret does not exist"}]}});
        let requests = vec![
            json!({"metadata": {"name": "web-tls-1", "namespace": "apps", "uid": "r1",
                "ownerReferences": [{"uid": "c1"}], "annotations": {"cert-manager.io/certificate-revision": "1"}},
                "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Failed", "message": "old"}]}}),
            json!({"metadata": {"name": "web-tls-2", "namespace": "apps", "uid": "r2",
                "ownerReferences": [{"uid": "c1"}], "annotations": {"cert-manager.io/certificate-revision": "2"}},
                "spec": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
                "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending",
                    "message": "Waiting on certificate issuance from order apps/web-tls-2-123: \"pending\""}]}}),
        ];
        let orders = vec![
            json!({"metadata": {"name": "web-tls-2-123", "namespace": "apps", "uid": "o1",
            "ownerReferences": [{"uid": "r2"}]}, "status": {"state": "pending"}}),
        ];
        let challenges = vec![
            json!({"metadata": {"name": "web-tls-2-123-456", "namespace": "apps", "uid": "ch1",
            "ownerReferences": [{"uid": "o1"}]},
            "spec": {"type": "HTTP-01", "dnsName": "memos.example.org"},
            "status": {"state": "pending", "presented": true,
                "reason": "Waiting for HTTP-01 challenge propagation: wrong status code '521', expected '200'"}}),
        ];
        (cert, requests, orders, challenges)
    }

    #[test]
    fn a_certificate_is_followed_to_its_challenge() {
        let (cert, requests, orders, challenges) = objects();
        let chain = certificate_chain(&cert, &requests, &orders, &challenges);
        assert!(!chain.ready);
        let kinds: Vec<&str> = chain.hops.iter().map(|h| h.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["Certificate", "CertificateRequest", "Order", "Challenge"]
        );
        assert_eq!(chain.hops[1].name, "web-tls-2", "the newest request");
        assert_eq!(
            chain.hops[3].message,
            "HTTP-01 for memos.example.org, state pending: Waiting for HTTP-01 challenge propagation: wrong status code '521', expected '200'"
        );
        let hint = chain.hint.unwrap();
        assert!(
            hint.contains("got HTTP 521 (a 52x code is Cloudflare's"),
            "{hint}"
        );
        assert!(hint.contains("DNS-01"), "{hint}");
    }

    #[test]
    fn ready_missing_requests_and_issuers() {
        let (mut cert, requests, _, _) = objects();
        let chain = certificate_chain(&cert, &[], &[], &[]);
        assert!(chain.hint.unwrap().contains("is cert-manager running"));
        let mut pending = requests[1].clone();
        pending["status"]["conditions"][0]["message"] =
            "Referenced \"ClusterIssuer\" not found: clusterissuer.cert-manager.io \"letsencrypt\" not found; issuer not found".into();
        let chain = certificate_chain(&cert, &[pending], &[], &[]);
        assert!(
            chain
                .hint
                .unwrap()
                .starts_with("the issuer ClusterIssuer/letsencrypt does not exist")
        );
        cert["status"]["conditions"][0]["status"] = "True".into();
        assert!(certificate_chain(&cert, &requests, &[], &[]).ready);
    }
}
