//! sluice-source's integration tests, one binary: the source controllers
//! against the local control plane, with Git served over smart HTTP and
//! ssh, a real OCI registry (Debian's `docker-registry`) and a local Helm
//! repository (`sluice_testsupport`).

#![allow(dead_code)]

mod git_ssh;
mod gitrepository;
mod helm;
mod ocirepository;
mod support;
mod verify;
