//! Whether a webhook request is one a Receiver accepts: its signature or token, and its event
//! among the Receiver's `events`, per `spec.type`, as notification-controller v1.9 checks them
//! (`internal/server/receiver_handlers.go`). Pure: the request is given as headers and body.
//!
//! - `generic`: anything (the secret path is the authentication);
//! - `generic-hmac`: `X-Signature: <sha1|sha256|sha512>=<hex HMAC of the body with the token>`;
//! - `github`: `X-Hub-Signature-256` (else `X-Hub-Signature`, SHA-1) as go-github's
//!   `ValidatePayload` checks it, the event from `X-GitHub-Event`. Gitea and Forgejo send the
//!   same headers (with their own `X-Gitea-Event`, `X-Forgejo-Event` beside them);
//! - `gitlab`: `X-Gitlab-Token` equal to the token, the event from `X-Gitlab-Event`;
//! - `bitbucket` (Bitbucket Server): as `github`, the event from `X-Event-Key`;
//! - `harbor`: `Authorization` equal to the token;
//! - `dockerhub`, `quay`, `acr`: a JSON body of the registry's shape;
//! - `nexus`: `X-Nexus-Webhook-Signature`, the hex HMAC-SHA1 of the body.
//!
//! `generic-oidc`, `gcr` and `cdevents` are not served yet: [`supported`] says so, and the
//! controller refuses such a Receiver by name.

use hmac::{Hmac, KeyInit, Mac};
use sluice_api::notification::ReceiverType;

/// Why a request is refused (400, with this in the log; never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Whether sluice serves Receivers of `t`; the refusal otherwise.
pub fn supported(t: &ReceiverType) -> Result<(), String> {
    match t {
        ReceiverType::Generic
        | ReceiverType::GenericHmac
        | ReceiverType::Github
        | ReceiverType::Gitlab
        | ReceiverType::Bitbucket
        | ReceiverType::Harbor
        | ReceiverType::Dockerhub
        | ReceiverType::Quay
        | ReceiverType::Nexus
        | ReceiverType::Acr => Ok(()),
        other => Err(format!(
            "spec.type: receivers of type '{}' are not supported by sluice yet",
            other.as_str()
        )),
    }
}

/// A request's headers, looked up case-insensitively.
pub trait Headers {
    /// The value of header `name`, if present and text.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Checks a request for a Receiver of type `t` with `token` and `events`; gives the event
/// (for the log) when accepted.
pub fn validate(
    t: &ReceiverType,
    token: &str,
    events: &[String],
    headers: &(impl Headers + ?Sized),
    body: &[u8],
) -> Result<Option<String>, Rejection> {
    let reject = |m: String| Err(Rejection(m));
    match t {
        ReceiverType::Generic => Ok(None),
        ReceiverType::GenericHmac => {
            let sig = headers.get("X-Signature").unwrap_or_default();
            check_signature(sig, body, token)
                .map_err(|e| Rejection(format!("unable to validate HMAC signature: {e}")))?;
            Ok(None)
        }
        ReceiverType::Github | ReceiverType::Bitbucket => {
            let who = if *t == ReceiverType::Github {
                "GitHub"
            } else {
                "Bitbucket server"
            };
            let sig = headers
                .get("X-Hub-Signature-256")
                .or_else(|| headers.get("X-Hub-Signature"))
                .unwrap_or_default();
            if let Err(e) = check_signature(sig, body, token) {
                return reject(format!("the {who} signature header is invalid, err: {e}"));
            }
            let event_header = if *t == ReceiverType::Github {
                "X-GitHub-Event"
            } else {
                "X-Event-Key"
            };
            let event = headers.get(event_header).unwrap_or_default().to_owned();
            allowed(&event, events, who)?;
            Ok(Some(event))
        }
        ReceiverType::Gitlab => {
            if headers.get("X-Gitlab-Token") != Some(token) {
                return reject(
                    "the X-Gitlab-Token header value does not match the receiver token".into(),
                );
            }
            let event = headers.get("X-Gitlab-Event").unwrap_or_default().to_owned();
            allowed(&event, events, "GitLab")?;
            Ok(Some(event))
        }
        ReceiverType::Harbor => {
            if headers.get("Authorization") != Some(token) {
                return reject(
                    "the Harbor Authorization header value does not match the receiver token"
                        .into(),
                );
            }
            Ok(None)
        }
        ReceiverType::Dockerhub => {
            let v = json_object(body)
                .map_err(|_| Rejection("cannot decode DockerHub webhook payload".into()))?;
            Ok(v.pointer("/push_data/tag")
                .and_then(serde_json::Value::as_str)
                .map(|tag| format!("push of tag {tag}")))
        }
        ReceiverType::Quay => {
            json_object(body)
                .map_err(|e| Rejection(format!("cannot decode Quay webhook payload: {e}")))?;
            Ok(None)
        }
        ReceiverType::Acr => {
            json_object(body)
                .map_err(|e| Rejection(format!("cannot decode ACR webhook payload: {e}")))?;
            Ok(None)
        }
        ReceiverType::Nexus => {
            let Some(sig) = headers
                .get("X-Nexus-Webhook-Signature")
                .filter(|s| !s.is_empty())
            else {
                return reject("the Nexus signature is missing from header".into());
            };
            if !equal_hex_hmac::<sha1::Sha1>(token, body, sig) {
                return reject("invalid Nexus signature".into());
            }
            json_object(body)
                .map_err(|e| Rejection(format!("cannot decode Nexus webhook payload: {e}")))?;
            Ok(None)
        }
        other => reject(format!("recevier type {:?} not supported", other.as_str())),
    }
}

/// The event is among `events` (case-insensitively), or `events` is empty.
fn allowed(event: &str, events: &[String], who: &str) -> Result<(), Rejection> {
    if events.is_empty() || events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
        return Ok(());
    }
    Err(Rejection(format!(
        "the {who} event {event:?} is not authorised"
    )))
}

/// go-github's `ValidateSignature`: `<algorithm>=<hex>`, compared in constant time.
fn check_signature(signature: &str, body: &[u8], token: &str) -> Result<(), String> {
    if signature.is_empty() {
        return Err("missing signature".into());
    }
    let Some((algorithm, hex)) = signature.split_once('=') else {
        return Err(format!("error parsing signature {signature:?}"));
    };
    let ok = match algorithm {
        "sha1" => equal_hex_hmac::<sha1::Sha1>(token, body, hex),
        "sha256" => equal_hex_hmac::<sha2::Sha256>(token, body, hex),
        "sha512" => equal_hex_hmac::<sha2::Sha512>(token, body, hex),
        other => return Err(format!("unknown hash type prefix: {other:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err("payload signature check failed".into())
    }
}

/// Whether `hex` is the hex HMAC of `body` keyed with `token` (constant-time comparison).
fn equal_hex_hmac<D>(token: &str, body: &[u8], hex: &str) -> bool
where
    Hmac<D>: KeyInit + Mac,
    D: hmac::EagerHash,
{
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<D> as KeyInit>::new_from_slice(token.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn json_object(body: &[u8]) -> Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if v.is_object() {
        Ok(v)
    } else {
        Err("not a JSON object".into())
    }
}

/// The hex HMAC of `body` keyed with `token` (tests and senders).
pub fn sign_sha256(token: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

    #[test]
    fn hmac_sha256_is_rfc_4231s() {
        // RFC 4231, test case 2.
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(sign_sha256("Jefe", b"what do ya want for nothing?"), hex);
    }

    #[test]
    fn github_and_gitea_payloads_are_checked_by_signature_and_event() {
        let sig = format!("sha256={}", sign_sha256("s3cr3t", BODY));
        let push = [
            ("X-Hub-Signature-256", sig.as_str()),
            ("X-GitHub-Event", "push"),
        ];
        let t = ReceiverType::Github;
        assert_eq!(
            validate(&t, "s3cr3t", &[], &push[..], BODY),
            Ok(Some("push".into()))
        );
        // Gitea sends the same signature header (and its own event header beside GitHub's).
        let gitea = [
            ("X-Gitea-Event", "push"),
            ("X-GitHub-Event", "push"),
            ("x-hub-signature-256", sig.as_str()),
        ];
        assert!(validate(&t, "s3cr3t", &["push".into()], &gitea[..], BODY).is_ok());
        let e = validate(&t, "other", &[], &push[..], BODY).unwrap_err();
        assert_eq!(
            e.0,
            "the GitHub signature header is invalid, err: payload signature check failed"
        );
        let e = validate(&t, "s3cr3t", &["release".into()], &push[..], BODY).unwrap_err();
        assert_eq!(e.0, "the GitHub event \"push\" is not authorised");
        let unsigned = [("X-GitHub-Event", "push")];
        assert!(validate(&t, "s3cr3t", &[], &unsigned[..], BODY).is_err());
        let tampered = validate(&t, "s3cr3t", &[], &push[..], b"{}");
        assert!(tampered.is_err());
    }

    #[test]
    fn tokens_and_registry_payloads() {
        let gitlab = [
            ("X-Gitlab-Token", "s3cr3t"),
            ("X-Gitlab-Event", "Push Hook"),
        ];
        assert!(
            validate(
                &ReceiverType::Gitlab,
                "s3cr3t",
                &["push hook".into()],
                &gitlab[..],
                BODY
            )
            .is_ok()
        );
        assert!(validate(&ReceiverType::Gitlab, "x", &[], &gitlab[..], BODY).is_err());
        let harbor = [("Authorization", "s3cr3t")];
        assert!(validate(&ReceiverType::Harbor, "s3cr3t", &[], &harbor[..], BODY).is_ok());
        assert!(validate(&ReceiverType::Harbor, "x", &[], &harbor[..], BODY).is_err());
        let hub = br#"{"push_data":{"tag":"1.2"},"repository":{"repo_url":"x"}}"#;
        assert_eq!(
            validate(&ReceiverType::Dockerhub, "", &[], &[][..], hub),
            Ok(Some("push of tag 1.2".into()))
        );
        assert!(validate(&ReceiverType::Quay, "", &[], &[][..], b"not json").is_err());
        let hmac = format!("sha512={}", {
            let mut mac = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(b"k").unwrap();
            mac.update(BODY);
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        let signed = [("X-Signature", hmac.as_str())];
        assert!(validate(&ReceiverType::GenericHmac, "k", &[], &signed[..], BODY).is_ok());
        let wrong = [("X-Signature", "md5=00")];
        let e = validate(&ReceiverType::GenericHmac, "k", &[], &wrong[..], BODY).unwrap_err();
        assert!(e.0.contains("unknown hash type prefix"), "{e}");
        assert!(supported(&ReceiverType::Cdevents).is_err());
        assert!(supported(&ReceiverType::Github).is_ok());
    }
}
