//! Parsing arbitrary text never panics, and whatever parses re-parses to
//! the same values after printing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_kustomize::yaml::{self, Value};

/// Equal up to the order of map keys. go-yaml v2's key order is not a total
/// order ("3" < "10" < "1a" < "3"), so Go kustomize itself prints such keys
/// in varying orders, and a second print may reorder them too.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = yaml::parse_all(text) else {
        return;
    };
    for d in docs {
        if !matches!(d, Value::Map(_)) {
            continue;
        }
        let printed = yaml::to_yaml(&d);
        let again = yaml::parse_one(&printed).expect("printed YAML parses");
        // Printing goes through kustomize's JSON normalisation, so compare
        // the printed forms rather than the values.
        let reprinted = yaml::to_yaml(&again);
        if printed != reprinted {
            let third = yaml::parse_one(&reprinted).expect("reprinted YAML parses");
            assert!(
                same(&again, &third),
                "unstable print for {text:?}:\n{printed}\n---\n{reprinted}"
            );
        }
    }
});
