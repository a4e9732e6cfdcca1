//! `sluice-git`: sluice's client of Git remotes, shared by the source
//! controller, the render pipeline and the CLI. No Kubernetes here.
//!
//! - [`fetch`]: gix transport — a cheap remote ref listing
//!   ([`fetch::ls_refs`]), a shallow fetch of one ref or commit
//!   ([`fetch::fetch`]), credentials and TLS/SSH material ([`fetch::Auth`]),
//!   and a commit's tree archived as an artifact ([`fetch::archive_commit`]).
//! - [`refs`]: which remote ref a `GitRepository` wants and how its revision
//!   is spelled.
//! - [`remote`]: [`remote::GitRemoteLoader`], the kustomize engine's
//!   `RemoteLoader` for remote bases and HTTP(S) files. There is no
//!   process-wide instance: the process (controller, CLI) constructs one
//!   and injects it where builds happen.
//! - [`archive`]: the artifact format (tar.gz + sha256 digest), written by
//!   the source controller and read by the render pipeline.
//! - [`sourceignore`]: Flux's ignore rules applied when archiving.
//! - [`signature`]: commit and tag signatures (OpenPGP, SSH) verified as
//!   Flux's `spec.verify` verifies them.

pub mod archive;
pub mod fetch;
pub mod proxy;
pub mod refs;
pub mod remote;
pub mod signature;
pub mod sourceignore;
mod ssh;
pub use ssh::{EcdsaCurveName, KeyKind, generate_identity, scan_known_hosts};

pub use fetch::install_crypto_provider;
pub use remote::GitRemoteLoader;
