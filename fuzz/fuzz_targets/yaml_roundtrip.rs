//! Parsing arbitrary text never panics, and whatever parses re-parses to
//! the same values after printing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_kustomize::yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = yaml::parse_all(text) else {
        return;
    };
    for d in docs {
        if !matches!(d, yaml::Value::Map(_)) {
            continue;
        }
        let printed = yaml::to_yaml(&d);
        let again = yaml::parse_one(&printed).expect("printed YAML parses");
        // Printing goes through kustomize's JSON normalisation, so compare
        // the printed forms rather than the values.
        assert_eq!(
            printed,
            yaml::to_yaml(&again),
            "unstable print for {text:?}"
        );
    }
});
