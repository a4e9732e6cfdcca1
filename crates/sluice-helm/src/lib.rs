//! Helm charts as data, with no Kubernetes client and no network: the pure
//! core under sluice's HelmRepository and HelmChart sources, and later its
//! Helm renderer.
//!
//! * [`chart`]: a chart loaded from a directory or a `.tgz` the way Helm v4's
//!   loader does (`Chart.yaml`, `values.yaml`, templates, `charts/`
//!   subcharts, `.helmignore`), with Flux's path safety (nothing outside the
//!   root, no symlink out of it) and size limits; every error names the file
//!   and, for `Chart.yaml`, the field.
//! * [`package`]: a chart written as `<name>-<version>.tgz`, entry for entry
//!   and byte for byte what `helm package` (Helm's `chartutil.Save`) writes.
//! * [`build`]: Flux's HelmChart build: package a chart from a source
//!   artifact (a directory or a `.tgz`), `valuesFiles` merged into its
//!   `values.yaml`, the version's build metadata, local `file://`
//!   dependencies put into `charts/`.
//! * [`render`]: a chart rendered as `helm template` renders it (values
//!   coalesced, subcharts, `Files`, `Capabilities`, hooks and install
//!   order), on the [`template`] engine and Helm's function map ([`funcs`]).
//! * [`repo`]: a Helm repository `index.yaml` read as a stream, keeping
//!   only the entries of the one chart asked for; the version resolved as
//!   Flux does; chart URLs resolved against the repository URL.
//!
//! What Helm and Flux print (error messages, YAML) is reproduced where a
//! user or another tool can see it; the differences are listed in the
//! README.

pub mod build;
pub mod chart;
pub mod flux;
pub mod funcs;
mod gofmt;
pub mod ignore;
mod jsonw;
pub mod package;
mod packed;
mod par;
pub mod release;
pub mod render;
pub mod repo;
pub mod template;
mod urlutil;
pub mod values;
pub mod values_from;
mod yaml;

pub use build::{Build, BuildError, BuildOptions, BuildReason, RemoteDependencies};
pub use chart::{Chart, ChartError, Dependency, File, Limits, Lock, Maintainer, Metadata};
pub use package::{archive_file_name, package, package_to};
pub use repo::{ChartVersion, IndexError, IndexSummary, resolve, resolve_reference_url, validate};
