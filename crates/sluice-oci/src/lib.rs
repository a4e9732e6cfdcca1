//! `sluice-oci`: sluice's client of OCI registries, shared by the source
//! controllers (OCIRepository, HelmRepository `type: oci`, HelmChart) and
//! the CLI (`sluice push|pull artifact`). No Kubernetes here.
//!
//! - [`reference`]: `oci://host[:port]/path` URLs, tags and digests.
//! - [`auth`]: credentials (basic, `.dockerconfigjson` keychains merged from
//!   several Secrets) and `WWW-Authenticate` challenges.
//! - [`client`]: the blocking registry client: anonymous first, then the
//!   registry's challenge (Basic, or a Bearer token cached per scope);
//!   `list_tags`, `resolve` (one manifest `HEAD`), `manifest`,
//!   `fetch_blob` (streamed, digest-checked, bounded), `push_blob_*`,
//!   `push_manifest`. Run it in `spawn_blocking` from async code.
//! - [`manifest`]: OCI / Docker manifests, indexes, descriptors.
//! - [`artifact`]: Flux's artifact format (`flux push|pull artifact`).
//! - [`helm`]: Helm charts as `helm push` stores them.
//!
//! Errors are one [`Error`] with an [`ErrorKind`] the controllers map to
//! Flux's reasons (`Auth` is `AuthenticationFailed`); messages name the URL,
//! tag or digest and never a password or token.

pub mod artifact;
pub mod auth;
pub mod client;
pub mod error;
pub mod helm;
pub mod manifest;
pub mod reference;

pub use auth::{Credentials, DockerConfig, Keychain, Proxy};
pub use client::{Client, ClientOptions, PulledManifest, Scope, TlsConfig};
pub use error::{Error, ErrorKind, Result};
pub use manifest::{Descriptor, Manifest};
pub use reference::{ArtifactUrl, Reference, Target};
/// Makes ring the process's rustls provider (idempotent); `Client::new`
/// calls it.
pub use sluice_git::install_crypto_provider;
