//! Integration tests against a real registry.
