//! sluice-helm's fixture and corpus tests: one test binary, a module per
//! area. The real charts of `../shared/conformance/helm` are inputs where
//! present (each test says so and skips when they are not); the packaging
//! comparison with the real Helm runs when `scripts/build-helm` has built it.

mod support;

mod build;
mod corpus;
mod funcs;
mod garbage;
mod load;
mod package;
mod release;
mod render;
mod repo;
