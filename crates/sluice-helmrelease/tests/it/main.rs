//! The HelmRelease controller's crate against a real API server (`scripts/testenv`, through
//! `sluice-testsupport`): one binary, a module per part.

mod actions;
mod controller;
mod storage;
