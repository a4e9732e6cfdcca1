//! sluice-source's integration tests, one binary: the source controllers
//! against the local control plane, with Git served over smart HTTP and
//! ssh, a real OCI registry (Debian's `docker-registry`) and a local Helm
//! repository, and a real S3 server for Buckets (`sluice_testsupport`).

#![allow(dead_code)]

mod bucket;
mod git_ssh;
mod gitrepository;
mod helm;
mod ocirepository;
mod support;
mod verify;
