//! `ExternalArtifact`, `source.toolkit.fluxcd.io/v1` (source-controller `api/v1`, Flux 2.7 and
//! later): an Artifact that a third-party controller produces and serves (a generator, a
//! transformer, a source type Flux has no kind for). No Flux controller reconciles it: its
//! producer writes `status.artifact`, and Kustomizations and HelmReleases consume it when the
//! `ExternalArtifact` feature gate is enabled.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::meta::{Artifact, NamespacedObjectKindReference};

/// The kind of [`ExternalArtifact`].
pub const EXTERNAL_ARTIFACT_KIND: &str = "ExternalArtifact";

/// The feature gate, as Flux's controllers name it, that lets Kustomizations and HelmReleases
/// consume ExternalArtifacts (`--feature-gates=ExternalArtifact=true`). Off by default, as in
/// Flux: an ExternalArtifact's URL is written by whoever may write its status.
pub const EXTERNAL_ARTIFACT_FEATURE_GATE: &str = "ExternalArtifact";

/// ExternalArtifactSpec defines the desired state of ExternalArtifact
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "ExternalArtifact",
    plural = "externalartifacts",
    singular = "externalartifact",
    namespaced,
    status = "ExternalArtifactStatus",
    schema = "manual",
    derive = "PartialEq",
    shortname = "ea",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.sourceRef.name"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalArtifactSpec {
    /// SourceRef points to the Kubernetes custom resource for
    /// which the artifact is generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<NamespacedObjectKindReference>,
}

impl JsonSchema for ExternalArtifact {
    fn schema_name() -> Cow<'static, str> {
        EXTERNAL_ARTIFACT_KIND.into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        // Flux's status has no observedGeneration, so no default either.
        crate::schema::root_with_plain_status::<ExternalArtifactSpec, ExternalArtifactStatus>(
            generator,
            "ExternalArtifact is the Schema for the external artifacts API",
        )
    }
}

/// ExternalArtifactStatus defines the observed state of ExternalArtifact
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalArtifactStatus {
    /// Artifact represents the output of an ExternalArtifact reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// Conditions holds the conditions for the ExternalArtifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Option<Vec<Condition>>,
}

impl ExternalArtifact {
    /// The current Artifact, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }

    /// The conditions its producer wrote.
    pub fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_produced_external_artifact() {
        let obj: ExternalArtifact = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": "app", "namespace": "apps"},
            "spec": {"sourceRef": {
                "apiVersion": "source.extensions.fluxcd.io/v1beta1",
                "kind": "ArtifactGenerator",
                "name": "monorepo"
            }},
            "status": {"artifact": {
                "digest": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                "lastUpdateTime": "2026-12-08T00:00:00Z",
                "path": "artifactgenerator/apps/monorepo/app.tar.gz",
                "revision": "latest@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                "url": "http://source-watcher.flux-system.svc/artifactgenerator/apps/monorepo/app.tar.gz"
            }}
        }))
        .expect("a produced ExternalArtifact reads");
        let source = obj.spec.source_ref.as_ref().map(|r| r.kind.as_str());
        assert_eq!(source, Some("ArtifactGenerator"));
        let artifact = obj.artifact().expect("its artifact");
        assert!(artifact.revision.starts_with("latest@sha256:"));
        assert!(obj.conditions().is_empty());
        let none = ExternalArtifact::new("bare", ExternalArtifactSpec::default());
        assert!(none.artifact().is_none());
    }
}
