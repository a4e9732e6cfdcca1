//! Failures whose cause is the cluster, not the release: a StorageClass that does not exist, a
//! CRD that is not installed, a port already held (on k3s, often by its bundled Traefik and
//! servicelb), a LoadBalancer Service no load balancer gives an address (what Helm's legacy
//! wait waits for), nodes without room. Retrying or rolling back does not change them, so the
//! controller stops retrying once the same one has failed the release twice (with a
//! remediation between), names it, and tries again when something changes (the HelmRelease,
//! its chart, a reconcile request). Flux's helm-controller retries such releases until its
//! retries run out, or forever with `retries: -1`.
//!
//! Pure: reads the failure messages (with their cause chains) the controller already has.

/// A cause found in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// The cause, as the message names it (`StorageClass "fast" does not exist`).
    pub summary: String,
    /// What usually fixes it.
    pub hint: &'static str,
}

const HINT_STORAGE: &str = "create the StorageClass or mark one as default; on k3s, check that \
                            local-path-provisioner is not disabled";
const HINT_CRD: &str = "install the CRD first (a HelmRelease or Kustomization it dependsOn)";
const HINT_PORT: &str = "free the port or pick another; on k3s, the bundled Traefik (and its \
                         servicelb pods) hold 80 and 443 unless k3s runs with --disable=traefik";
const HINT_ROOM: &str = "add capacity or lower the release's requests";
const HINT_LOAD_BALANCER: &str = "give the cluster a load balancer (k3s's servicelb, unless k3s \
                                  runs with --disable=servicelb; MetalLB; kube-vip) or make the \
                                  Service a NodePort or ClusterIP one";

/// The environmental cause named in `message`, if any.
pub fn cause(message: &str) -> Option<Cause> {
    if let Some(summary) = storage_class(message) {
        return Some(Cause {
            summary,
            hint: HINT_STORAGE,
        });
    }
    if let Some(start) = message.find("no matches for kind \"") {
        let rest = &message[start..];
        let end = rest
            .find("\" in version \"")
            .and_then(|i| rest[i + 14..].find('"').map(|j| i + 14 + j + 1))
            .unwrap_or(rest.len());
        return Some(Cause {
            summary: rest[..end].to_owned(),
            hint: HINT_CRD,
        });
    }
    for needle in [
        "provided port is already allocated",
        "didn't have free ports for the requested pod ports",
    ] {
        if message.contains(needle) {
            return Some(Cause {
                summary: needle.to_owned(),
                hint: HINT_PORT,
            });
        }
    }
    if let Some(start) = message.find("no load balancer assigned an address") {
        let rest = &message[start..];
        let end = rest.find(':').unwrap_or(rest.len());
        // The Service, as the wait names it: `…; Service/ns/name: no load balancer …`.
        let service = message[..start]
            .strip_suffix(": ")
            .and_then(|before| before.rsplit("; ").next())
            .filter(|s| s.starts_with("Service/"));
        let summary = match service {
            Some(svc) => format!("{svc}: {}", &rest[..end]),
            None => rest[..end].to_owned(),
        };
        return Some(Cause {
            summary,
            hint: HINT_LOAD_BALANCER,
        });
    }
    for needle in ["Insufficient cpu", "Insufficient memory"] {
        if message.contains(needle) {
            return Some(Cause {
                summary: format!("no node has room: {needle}"),
                hint: HINT_ROOM,
            });
        }
    }
    None
}

/// `StorageClass "x" does not exist` or the missing default class, as the cause chains word
/// them.
fn storage_class(message: &str) -> Option<String> {
    let start = message.find("StorageClass \"")?;
    let rest = &message[start..];
    let end = [" → ", "; ", "\n"]
        .iter()
        .filter_map(|sep| rest.find(sep))
        .min()
        .unwrap_or(rest.len());
    let step = rest[..end].trim_end_matches([',', ']', ')']);
    (step.contains("does not exist") || step.contains("is not set")).then(|| step.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_in_the_cluster_are_named() {
        let m = "health check failed after 6s: timeout waiting for: [Deployment/apps/memos status: \
                 'InProgress']; Deployment apps/memos 0/1 available → Pod memos-6c Pending: \
                 Unschedulable → PVC memos-data unbound (phase Pending) → StorageClass \"fast\" does not exist";
        let c = cause(m).unwrap();
        assert_eq!(c.summary, "StorageClass \"fast\" does not exist");
        assert!(c.hint.contains("local-path"));
        let m = "failed to install CRD app/crds/widgets.yaml: Widget/apps/w: no matches for kind \"Widget\" in version \"example.com/v1\" (install the CRD)";
        assert_eq!(
            cause(m).unwrap().summary,
            "no matches for kind \"Widget\" in version \"example.com/v1\""
        );
        let m = "Service \"traefik\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated";
        assert!(cause(m).unwrap().hint.contains("--disable=traefik"));
        let m = "0/2 nodes are available: 2 Insufficient memory.";
        assert_eq!(
            cause(m).unwrap().summary,
            "no node has room: Insufficient memory"
        );
        let m = format!(
            "timeout waiting for: [Service/kube-system/traefik status: 'InProgress']; \
             Service/kube-system/traefik: {}",
            sluice_kstatus::legacy::LOAD_BALANCER_MISSING
        );
        let c = cause(&m).unwrap();
        assert_eq!(
            c.summary,
            "Service/kube-system/traefik: no load balancer assigned an address to this \
             LoadBalancer Service"
        );
        assert!(c.hint.contains("servicelb"));
        assert_eq!(cause("job migrate failed: BackoffLimitExceeded"), None);
        assert_eq!(cause("StorageClass \"fast\" is ready"), None);
    }
}
