//! Flux's APIs as Rust types: `GitRepository`, `OCIRepository`, `HelmRepository` and `HelmChart`
//! (`source.toolkit.fluxcd.io/v1`), `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`) and
//! `HelmRelease` (`helm.toolkit.fluxcd.io/v2`), field for field, with the CRDs that serve them.
//!
//! The types read and write exactly what Flux's controllers read and write, so a repository
//! written for Flux reconciles unchanged, the `flux` CLI works against a cluster run by sluice,
//! and sluice runs on Flux's own CRDs as well as on the ones [`crds`] returns.
//!
//! - [`source`]: [`GitRepository`] and its parts; [`OCIRepository`] ([`source::oci`]),
//!   [`HelmRepository`] and [`HelmChart`] ([`source::helm`]), all re-exported from [`source`].
//! - [`kustomization`]: [`Kustomization`] and its parts.
//! - [`helm_release`]: [`HelmRelease`] and its parts.
//! - [`notification`]: [`Receiver`] (`notification.toolkit.fluxcd.io/v1`), [`Provider`] and
//!   [`Alert`] (`v1beta3`) and their parts.
//! - [`kustomize`]: the kustomize settings both share (patches, selectors, images).
//! - [`meta`]: what all Flux objects share: condition types and reasons, labels and annotations,
//!   references, the source artifact, and the formats of durations, revisions and inventory ids.
//!
//! ```
//! use sluice_api::kustomization::CrossNamespaceSourceReference;
//! use sluice_api::meta::{self, READY_CONDITION, CONDITION_TRUE, RECONCILIATION_SUCCEEDED_REASON};
//! use sluice_api::{FluxObject, Kustomization, KustomizationSpec};
//!
//! let source = CrossNamespaceSourceReference::git_repository("flux-system");
//! let mut ks = Kustomization::new("apps", KustomizationSpec::new("10m", true, source));
//! assert_eq!(ks.spec.timeout().unwrap().as_secs(), 570); // the interval less 30s
//!
//! let status = ks.status.get_or_insert_with(Default::default);
//! meta::set_condition(
//!     status.conditions_mut(),
//!     meta::new_condition(
//!         READY_CONDITION,
//!         CONDITION_TRUE,
//!         RECONCILIATION_SUCCEEDED_REASON,
//!         "Applied revision: main@sha1:5394cb7f48332b2de7c17dd8b8384bbc84b7e738",
//!         None,
//!     ),
//! );
//! assert!(ks.is_ready());
//! assert!(!ks.has_unhandled_reconcile_request());
//!
//! // The CRDs to install, equal in schema to Flux's own.
//! let crds = sluice_api::crds();
//! assert_eq!(crds[1].metadata.name.as_deref(), Some("kustomizations.kustomize.toolkit.fluxcd.io"));
//! ```

#![warn(missing_docs)]
// The doc comments of API fields are also the descriptions in the CRDs, worded like Flux's: plain
// text, with bare URLs and `<placeholders>`.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

mod schema;
mod string_enum;

pub mod go_json;
pub mod helm_release;
pub mod kustomization;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod source;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use helm_release::{HelmRelease, HelmReleaseSpec, HelmReleaseStatus};
pub use kustomization::{Kustomization, KustomizationSpec, KustomizationStatus};
pub use meta::FluxObject;
pub use notification::{
    Alert, AlertSpec, Provider, ProviderSpec, Receiver, ReceiverSpec, ReceiverStatus,
};
pub use source::{
    Bucket, BucketSpec, BucketStatus, ExternalArtifact, ExternalArtifactSpec,
    ExternalArtifactStatus, GitRepository, GitRepositorySpec, GitRepositoryStatus, HelmChart,
    HelmChartSpec, HelmChartStatus, HelmRepository, HelmRepositorySpec, HelmRepositoryStatus,
    OCIRepository, OCIRepositorySpec, OCIRepositoryStatus,
};

/// The CustomResourceDefinitions of the kinds sluice serves: GitRepository, Kustomization,
/// OCIRepository, HelmRepository, HelmChart, Bucket, ExternalArtifact, HelmRelease, then
/// Receiver, Provider, Alert.
///
/// These are [`CustomResourceExt::crd`] of each kind, completed as Flux's CRDs are: `listKind`
/// is filled in, and the annotation `kustomize.toolkit.fluxcd.io/substitute: disabled` keeps a
/// Kustomization that applies them from substituting the `${...}` in their descriptions. (kube's
/// derive would also put that annotation on every object made with `new`, so it is added here.)
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        GitRepository::crd(),
        Kustomization::crd(),
        OCIRepository::crd(),
        HelmRepository::crd(),
        HelmChart::crd(),
        Bucket::crd(),
        ExternalArtifact::crd(),
        HelmRelease::crd(),
        Receiver::crd(),
        Provider::crd(),
        Alert::crd(),
    ];
    for crd in &mut crds {
        // controller-gen writes `subresources: {}` for a kind without status (Provider, Alert).
        for version in &mut crd.spec.versions {
            version.subresources.get_or_insert_with(Default::default);
        }
        let names = &mut crd.spec.names;
        names
            .list_kind
            .get_or_insert_with(|| format!("{}List", names.kind));
        crd.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                kustomization::SUBSTITUTE_ANNOTATION.to_owned(),
                kustomization::DISABLED_VALUE.to_owned(),
            );
    }
    crds
}
