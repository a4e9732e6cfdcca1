//! Condition helpers and the order Flux keeps conditions in.
//!
//! The types, reasons and the set/find/remove primitives live in
//! `sluice_api::meta` (they are part of the API); this module adds the one
//! ordering every controller uses, so status stays stable and diffs quiet.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sluice_api::meta::{
    ARTIFACT_IN_STORAGE_CONDITION, ARTIFACT_OUTDATED_CONDITION, BUILD_FAILED_CONDITION,
    FETCH_FAILED_CONDITION, HEALTHY_CONDITION, INCLUDE_UNAVAILABLE_CONDITION, READY_CONDITION,
    RECONCILING_CONDITION, SOURCE_VERIFIED_CONDITION, STALLED_CONDITION,
    STORAGE_OPERATION_FAILED_CONDITION,
};

pub use sluice_api::meta::{
    find_condition, is_condition_true, new_condition, remove_condition, set_condition,
};

/// Ready first, then Reconciling and Stalled, then the negative-polarity
/// conditions, then the positive ones; unknown types last, by name.
const ORDER: &[&str] = &[
    READY_CONDITION,
    RECONCILING_CONDITION,
    STALLED_CONDITION,
    FETCH_FAILED_CONDITION,
    ARTIFACT_OUTDATED_CONDITION,
    STORAGE_OPERATION_FAILED_CONDITION,
    BUILD_FAILED_CONDITION,
    INCLUDE_UNAVAILABLE_CONDITION,
    HEALTHY_CONDITION,
    ARTIFACT_IN_STORAGE_CONDITION,
    SOURCE_VERIFIED_CONDITION,
];

/// Sorts `conditions` in Flux's order.
pub fn sort(conditions: &mut [Condition]) {
    let rank = |t: &str| ORDER.iter().position(|o| *o == t).unwrap_or(ORDER.len());
    conditions.sort_by(|a, b| {
        rank(&a.type_)
            .cmp(&rank(&b.type_))
            .then(a.type_.cmp(&b.type_))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_first_then_reconciling_stalled_negative_positive_other() {
        let mut c: Vec<Condition> = [
            "Zeta",
            ARTIFACT_IN_STORAGE_CONDITION,
            HEALTHY_CONDITION,
            FETCH_FAILED_CONDITION,
            STALLED_CONDITION,
            "Alpha",
            RECONCILING_CONDITION,
            READY_CONDITION,
        ]
        .iter()
        .map(|t| new_condition(t, "True", "R", "m", None))
        .collect();
        sort(&mut c);
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                READY_CONDITION,
                RECONCILING_CONDITION,
                STALLED_CONDITION,
                FETCH_FAILED_CONDITION,
                HEALTHY_CONDITION,
                ARTIFACT_IN_STORAGE_CONDITION,
                "Alpha",
                "Zeta"
            ]
        );
    }
}
