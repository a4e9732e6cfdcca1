//! The Kustomization controller's integration tests, end to end through Git
//! against the local control plane: one test binary (linked once), one
//! module per area. Run one area with
//! `scripts/with-testenv cargo test -p sluice-kustomization --test it <module>::`.

mod support;

mod apply_health;
mod bad_input;
mod binary;
mod bucket_source;
mod external_artifact;
mod inventory_guard;
mod kustomization;
mod oci_source;
mod reloader_interplay;
mod sops;
mod spec_fields;
mod startup;
mod tenancy;
