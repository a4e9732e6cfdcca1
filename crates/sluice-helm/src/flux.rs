//! How Flux's helm-controller (v1.6.4) sees a Helm release: the digests of
//! a HelmRelease's `status.history` snapshots and of its values
//! (`configDigest`, `lastAttemptedConfigDigest`). A controller that computes
//! them exactly as helm-controller does can take over a release Flux made,
//! and hand it back, without an upgrade: the snapshot it finds matches the
//! release in storage.
//!
//! - The values digest is Flux's `chartutil.DigestValues`: the values
//!   encoded by go-yaml v2 with every map's keys sorted bytewise and
//!   integral numbers written as integers, hashed with SHA-256; empty values
//!   hash nothing.
//! - The release digest is helm-controller's `release.Digest` of an
//!   `Observation`: name, version, info, chart metadata, config, manifest,
//!   hooks other than test hooks, namespace and the chart's OCI digest,
//!   written by Go's `json.Encoder` (a newline at the end), hashed with
//!   SHA-256.

use sha2::{Digest as _, Sha256};
use sluice_kustomize::yaml::{Map as YMap, Value as Y};

use crate::jsonw::{Hashing, JsonOut, Streamed};
use crate::release::{Release, ReleaseError};

/// `status.history[].apiVersion` of the snapshots helm-controller v1.5 and
/// later write (Helm v4 releases).
pub const SNAPSHOT_API_VERSION: &str = "v2";

fn sha256(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&Sha256::digest(data))
    )
}

/// Values as `sigs.k8s.io/yaml.JSONObjectToYAMLObject` hands them to
/// go-yaml, with Flux's `SortMapSlice` applied: keys sorted bytewise at
/// every level (maps inside lists too), integral `float64`s as integers.
fn digest_model(v: &Y) -> Y {
    match v {
        Y::Float(f)
            if f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(f) =>
        {
            Y::Int(*f as i64)
        }
        Y::Seq(items) => Y::Seq(items.iter().map(digest_model).collect()),
        Y::Map(m) => {
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut out = YMap::new();
            for (k, x) in entries {
                out.insert(k.clone(), digest_model(x));
            }
            Y::Map(out)
        }
        other => other.clone(),
    }
}

/// Flux's `chartutil.DigestValues(digest.Canonical, values)`.
pub fn config_digest(values: &YMap) -> String {
    if values.is_empty() {
        return sha256(b"");
    }
    let text = sluice_kustomize::yaml::to_yaml(&digest_model(&Y::Map(values.clone())));
    sha256(text.as_bytes())
}

/// helm-controller's `Observation` of a release, as `json.Encoder` writes
/// it (ending in a newline). `oci_digest` is the digest of the chart's OCI
/// artifact when the chart came from one (empty otherwise).
pub fn observation_json(r: &Release, oci_digest: &str) -> Result<String, ReleaseError> {
    let mut out = String::new();
    write_observation(r, oci_digest, &mut out)?;
    Ok(out)
}

/// [`observation_json`], written to `out`.
fn write_observation<O: JsonOut + ?Sized>(
    r: &Release,
    oci_digest: &str,
    out: &mut O,
) -> Result<(), ReleaseError> {
    use crate::funcs::go::json_string;
    use crate::release::{write_hook, write_info, write_metadata, y_json};
    out.push_str("{\"name\":");
    json_string(&r.name, true, out);
    out.push_str(&format!(",\"version\":{}", r.version));
    out.push_str(",\"info\":");
    write_info(out, &r.info.clone().unwrap_or_default())?;
    out.push_str(",\"chartMetadata\":");
    let metadata = r
        .chart
        .as_ref()
        .and_then(|c| c.metadata.clone())
        .unwrap_or_default();
    write_metadata(out, &metadata)?;
    out.push_str(",\"config\":");
    if r.config.is_empty() {
        out.push_str("null");
    } else {
        y_json(&Y::Map(r.config.clone()), out)?;
    }
    out.push_str(",\"manifest\":");
    json_string(&r.manifest, true, out);
    out.push_str(",\"hooks\":");
    let hooks: Vec<_> = r
        .hooks
        .iter()
        .filter(|h| !h.events.iter().any(|e| e == "test"))
        .collect();
    if hooks.is_empty() {
        out.push_str("null");
    } else {
        out.push('[');
        for (i, h) in hooks.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_hook(out, h);
        }
        out.push(']');
    }
    out.push_str(",\"namespace\":");
    json_string(&r.namespace, true, out);
    if !oci_digest.is_empty() {
        out.push_str(",\"ociDigest\":");
        json_string(oci_digest, true, out);
    }
    out.push_str("}\n");
    Ok(())
}

/// The Helm release name of a HelmRelease, as helm-controller derives it:
/// `spec.releaseName`, else `<spec.targetNamespace>-<name>` when a target
/// namespace is set, else the object's name; a name longer than 53
/// characters (Helm's limit) becomes its first 40 characters, `-`, and the
/// first 12 hex digits of the SHA-256 of the whole name (`ShortenName`).
pub fn release_name(object_name: &str, release_name: &str, target_namespace: &str) -> String {
    let name = if !release_name.is_empty() {
        release_name.to_string()
    } else if !target_namespace.is_empty() {
        format!("{target_namespace}-{object_name}")
    } else {
        object_name.to_string()
    };
    shorten_name(&name)
}

/// helm-controller's `release.ShortenName`.
pub fn shorten_name(name: &str) -> String {
    const MAX: usize = 53;
    const HASH: usize = 12;
    if name.len() <= MAX {
        return name.to_string();
    }
    let sum = data_encoding::HEXLOWER.encode(&Sha256::digest(name.as_bytes()));
    // Kubernetes names are ASCII; a multi-byte character is not split.
    let mut cut = MAX - (HASH + 1);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &name[..cut], &sum[..HASH])
}

/// helm-controller's `release.Digest(digest.Canonical, observation)`: the
/// `digest` of a `status.history` snapshot.
///
/// The observation is hashed as it is written, never held whole (its manifest alone is
/// megabytes for a large chart).
pub fn release_digest(r: &Release, oci_digest: &str) -> Result<String, ReleaseError> {
    let mut out = Streamed::new(Hashing::default());
    write_observation(r, oci_digest, &mut out)?;
    let hashed = out
        .finish()
        .map_err(|e| ReleaseError::Encode(format!("digest: {e}")))?;
    Ok(format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&hashed.0.finalize())
    ))
}

/// A `status.history` entry as helm-controller writes it
/// (`ObservedToSnapshot`). Times are as stored in the release (RFC 3339;
/// the API keeps seconds); `deleted` is `None` for Go's zero time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub api_version: String,
    pub digest: String,
    pub name: String,
    pub namespace: String,
    pub version: i64,
    pub status: String,
    /// `install`, `upgrade`, `rollback`, `uninstall` or
    /// `uninstall-remediation`: what made it (set by the controller).
    pub action: String,
    pub chart_name: String,
    pub chart_version: String,
    pub app_version: String,
    pub config_digest: String,
    pub first_deployed: Option<String>,
    pub last_deployed: Option<String>,
    pub deleted: Option<String>,
    pub oci_digest: String,
}

/// The snapshot of a stored release, as helm-controller takes it.
pub fn snapshot(r: &Release, action: &str, oci_digest: &str) -> Result<Snapshot, ReleaseError> {
    let md = r
        .chart
        .as_ref()
        .and_then(|c| c.metadata.clone())
        .unwrap_or_default();
    let info = r.info.clone().unwrap_or_default();
    Ok(Snapshot {
        api_version: SNAPSHOT_API_VERSION.into(),
        digest: release_digest(r, oci_digest)?,
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        version: r.version,
        status: info.status.clone(),
        action: action.into(),
        chart_name: md.name,
        chart_version: md.version,
        app_version: md.app_version,
        config_digest: config_digest(&r.config),
        first_deployed: info.first_deployed,
        last_deployed: info.last_deployed,
        deleted: info.deleted,
        oci_digest: oci_digest.into(),
    })
}

/// The chart version helm-controller installs from an OCIRepository (or an ExternalArtifact
/// whose revision has a digest): the chart's version with the first 12 hex digits of the
/// artifact's digest as build metadata (`6.7.1+0f5d0c8e2a0c`), and the digest it records
/// (`ociDigest`). A semver tag must name the chart's version. helm-controller's
/// `mutateChartWithSourceRevision`, with its error messages.
pub fn oci_chart_version(chart_version: &str, revision: &str) -> Result<(String, String), String> {
    use crate::values::parse_version;
    let mut version = parse_version(chart_version)
        .ok_or_else(|| format!("invalid chart version {chart_version}"))?;
    let digest_of = |rev: &str| -> Result<String, String> {
        let pair: Vec<&str> = rev.split(':').collect();
        match pair.as_slice() {
            [_, sha] if sha.len() >= 12 => Ok(sha[..12].to_owned()),
            _ => Err(format!("invalid artifact revision {rev}")),
        }
    };
    let tag = revision.split_once('@').map_or(revision, |(t, _)| t);
    let tag_version = parse_version(&tag.replace('_', "+"));
    let recorded = match tag_version {
        Some(tv) => {
            let pair: Vec<&str> = revision.split('@').collect();
            let same = tv.major == version.major
                && tv.minor == version.minor
                && tv.patch == version.patch
                && tv.pre == version.pre;
            if pair.len() != 2 || !same {
                return Err(format!(
                    "artifact revision {} does not match chart version {chart_version}",
                    pair[0]
                ));
            }
            version.metadata = digest_of(pair[1])?;
            pair[1].to_owned()
        }
        None => {
            version.metadata = digest_of(revision)?;
            revision.to_owned()
        }
    };
    Ok((version.to_string(), recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(yaml: &str) -> YMap {
        crate::values::load_values(yaml.as_bytes()).unwrap()
    }

    // The expected digests are those of Flux's own tests
    // (fluxcd/pkg/chartutil v1.27.2 digest_test.go, helm-controller v1.6.4
    // internal/release/digest_test.go).

    #[test]
    fn values_digests_are_fluxs() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(config_digest(&YMap::new()), empty);
        let a = values(
            "replicas: 3\nimage: {tag: latest, repository: nginx}\n\
             ports: [{protocol: TCP, port: 8080}, {port: 9090, protocol: UDP}]\n",
        );
        let b = values(
            "ports: [{port: 8080, protocol: TCP}, {protocol: UDP, port: 9090}]\n\
             image: {repository: nginx, tag: latest}\nreplicas: 3\n",
        );
        let want = "sha256:fcdc2b0de1581a3633ada4afee3f918f6eaa5b5ab38c3fef03d5b48d3f85d9f6";
        assert_eq!(config_digest(&a), want);
        assert_eq!(config_digest(&b), want);
        let numeric_keys = values(
            "replicas: 3\ntest:\n  632bd82398e71231a98004b6: value4\n  632bd817c559818a52307da2: value3\n\
             \x20 632bd80ddf416cf32fd50679: value2\n  632bd80235a05f4192aefade: value1\n",
        );
        assert_eq!(
            config_digest(&numeric_keys),
            "sha256:8a980fcbeadd6f05818f07e8aec14070c22250ca3d96af1fcd5f93b3e85b4d70"
        );
    }

    #[test]
    fn long_names_are_shortened_as_flux_does() {
        for (name, want) in [
            ("release-name", "release-name"),
            (
                "release-name-with-very-long-name-which-is-longer-than-53-characters",
                "release-name-with-very-long-name-which-i-788ca0d0d7b0",
            ),
            (
                "another-release-name-with-very-long-name-which-is-longer-than-53-characters",
                "another-release-name-with-very-long-name-7e72150d5a36",
            ),
            ("", ""),
        ] {
            assert_eq!(shorten_name(name), want);
        }
        assert_eq!(release_name("podinfo", "", ""), "podinfo");
        assert_eq!(release_name("podinfo", "", "apps"), "apps-podinfo");
        assert_eq!(release_name("podinfo", "web", "apps"), "web");
    }

    #[test]
    fn release_digest_is_helm_controllers() {
        let r = Release {
            name: "foo".into(),
            ..Release::default()
        };
        assert_eq!(
            observation_json(&r, "").unwrap(),
            "{\"name\":\"foo\",\"version\":0,\"info\":{},\"chartMetadata\":{},\"config\":null,\
             \"manifest\":\"\",\"hooks\":null,\"namespace\":\"\"}\n"
        );
        assert_eq!(
            release_digest(&r, "").unwrap(),
            "sha256:f1498f27a16a09cd7e1ee610d924df065c03d30035638babc95dd9a8d412ce4d"
        );
    }

    #[test]
    fn test_hooks_are_left_out_and_the_rest_kept() {
        let hook = |name: &str, event: &str| crate::release::Hook {
            name: name.into(),
            kind: "Pod".into(),
            events: vec![event.into()],
            ..Default::default()
        };
        let mut r = Release {
            name: "web".into(),
            version: 2,
            namespace: "apps".into(),
            hooks: vec![hook("t", "test")],
            config: values("a: 1\n"),
            ..Release::default()
        };
        let only_tests = observation_json(&r, "sha256:abc").unwrap();
        assert!(only_tests.contains("\"config\":{\"a\":1},"), "{only_tests}");
        assert!(only_tests.contains("\"hooks\":null,"), "{only_tests}");
        assert!(
            only_tests.ends_with(",\"ociDigest\":\"sha256:abc\"}\n"),
            "{only_tests}"
        );
        r.hooks.push(hook("pre", "pre-install"));
        let with_pre = observation_json(&r, "").unwrap();
        assert!(
            with_pre.contains("\"hooks\":[{\"name\":\"pre\",\"kind\":\"Pod\",\"events\":[\"pre-install\"],\"last_run\":{\"phase\":\"\"}}]"),
            "{with_pre}"
        );
    }

    #[test]
    fn oci_chart_versions_carry_the_digest_as_helm_controller_sets_it() {
        let digest = "sha256:0f5d0c8e2a0c9b2a5f6fd8a0c1a6e5b1c4d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6";
        assert_eq!(
            oci_chart_version("6.7.1", &format!("6.7.1@{digest}")).unwrap(),
            ("6.7.1+0f5d0c8e2a0c".to_owned(), digest.to_owned())
        );
        // A chart's own metadata is replaced; a `_` in the tag is Helm's `+`.
        assert_eq!(
            oci_chart_version("1.0+build.1", &format!("1.0.0_build.1@{digest}"))
                .unwrap()
                .0,
            "1.0.0+0f5d0c8e2a0c"
        );
        // A non-semver tag (latest, a branch) or a bare digest.
        assert_eq!(
            oci_chart_version("2.0.0", &format!("latest@{digest}"))
                .unwrap()
                .1,
            format!("latest@{digest}")
        );
        assert_eq!(
            oci_chart_version("2.0.0", digest).unwrap().0,
            "2.0.0+0f5d0c8e2a0c"
        );
        assert_eq!(
            oci_chart_version("2.0.0", &format!("1.0.0@{digest}")).unwrap_err(),
            "artifact revision 1.0.0 does not match chart version 2.0.0"
        );
        assert_eq!(
            oci_chart_version("x", digest).unwrap_err(),
            "invalid chart version x"
        );
    }
}
