//! Field access with kstatus' (lenient) semantics over `serde_json::Value`.

use serde_json::Value;

use crate::Error;

/// The value at `path`, if every step is an object key that exists.
pub(crate) fn nested<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    Some(cur)
}

/// kstatus `GetIntField`: the integer at `path`, or `default` when the
/// field is missing, not an integer, or the path crosses a non-object.
pub(crate) fn int_field(obj: &Value, path: &[&str], default: i64) -> i64 {
    nested(obj, path).and_then(Value::as_i64).unwrap_or(default)
}

/// kstatus `GetStringField`: the string at `path`, or `default`.
pub(crate) fn str_field<'a>(obj: &'a Value, path: &[&str], default: &'a str) -> &'a str {
    nested(obj, path).and_then(Value::as_str).unwrap_or(default)
}

/// `unstructured.NestedInt64`: `Ok(None)` when absent, an error when
/// present with another type (JSON `null` counts as absent).
pub(crate) fn nested_i64(obj: &Value, path: &[&str]) -> Result<Option<i64>, Error> {
    match nested(obj, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| Error::FieldType {
            path: path.join("."),
            expected: "int64",
        }),
    }
}

/// `unstructured.NestedString`: as [`nested_i64`] for strings.
pub(crate) fn nested_str<'a>(obj: &'a Value, path: &[&str]) -> Result<Option<&'a str>, Error> {
    match nested(obj, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| Error::FieldType {
            path: path.join("."),
            expected: "string",
        }),
    }
}

/// A status condition as kstatus reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BasicCondition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Decodes `status.conditions` the way kstatus' typed conversion does:
/// missing or `null` anywhere means no conditions; a wrong JSON type for
/// `status`, `conditions`, an entry or one of its string fields is an error.
pub(crate) fn conditions(obj: &Value) -> Result<Vec<BasicCondition>, Error> {
    let status = match obj.get("status") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::Malformed("status is not an object".into())),
    };
    let list = match status.get("conditions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Error::Malformed("status.conditions is not a list".into())),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let m = match item {
            Value::Null => {
                out.push(BasicCondition::default());
                continue;
            }
            Value::Object(m) => m,
            _ => {
                return Err(Error::Malformed(format!(
                    "status.conditions[{i}] is not an object"
                )));
            }
        };
        let field = |key: &str| -> Result<String, Error> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(Error::Malformed(format!(
                    "status.conditions[{i}].{key} is not a string"
                ))),
            }
        };
        out.push(BasicCondition {
            type_: field("type")?,
            status: field("status")?,
            reason: field("reason")?,
            message: field("message")?,
        });
    }
    Ok(out)
}

/// First condition with the given type and status.
pub(crate) fn find_condition<'a>(
    conds: &'a [BasicCondition],
    type_: &str,
    status: &str,
) -> Option<&'a BasicCondition> {
    conds
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
}

/// API group from `apiVersion` (`"apps/v1"` → `"apps"`, `"v1"` → `""`).
pub(crate) fn group(obj: &Value) -> &str {
    let api_version = str_field(obj, &["apiVersion"], "");
    match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    }
}

pub(crate) fn kind(obj: &Value) -> &str {
    str_field(obj, &["kind"], "")
}

/// Seconds since the Unix epoch for an RFC 3339 timestamp
/// (`2024-05-01T10:00:00Z`, fractional seconds and offsets accepted).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let sep = |i: usize, c: u8| b.get(i).is_some_and(|x| *x == c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let h = num(i + 1, i + 3)?;
            let m = num(i + 4, i + 6)?;
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-03-01T00:00:00Z", Some(951_868_800)),
            ("2024-02-29T12:30:15Z", Some(1_709_209_815)),
            ("2024-02-29T12:30:15.123456Z", Some(1_709_209_815)),
            ("2024-02-29T14:30:15+02:00", Some(1_709_209_815)),
            ("2024-02-29T10:30:15-02:00", Some(1_709_209_815)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2024-02-29 12:30:15Z", None),
            ("2024-02-29T12:30:15", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-02-29T12:30:15.Z", None),
            ("2024-02-29T12:30:15Zjunk", None),
            ("", None),
            ("é024-02-29T12:30:15Z", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), *want, "{s}");
        }
    }

    #[test]
    fn int_and_str_fields() {
        let o = json!({"spec": {"replicas": 3, "f": 1.5, "s": "x", "n": null}, "list": [1]});
        assert_eq!(int_field(&o, &["spec", "replicas"], 1), 3);
        assert_eq!(int_field(&o, &["spec", "missing"], 1), 1);
        assert_eq!(int_field(&o, &["spec", "f"], 7), 7);
        assert_eq!(int_field(&o, &["spec", "s"], 7), 7);
        assert_eq!(int_field(&o, &["list", "x"], 7), 7);
        assert_eq!(str_field(&o, &["spec", "s"], "d"), "x");
        assert_eq!(str_field(&o, &["spec", "replicas"], "d"), "d");
        assert_eq!(nested_i64(&o, &["spec", "replicas"]), Ok(Some(3)));
        assert_eq!(nested_i64(&o, &["spec", "n"]), Ok(None));
        assert!(nested_i64(&o, &["spec", "s"]).is_err());
        assert_eq!(nested_str(&o, &["spec", "s"]), Ok(Some("x")));
        assert!(nested_str(&o, &["spec", "replicas"]).is_err());
    }

    #[test]
    fn condition_decoding() {
        let ok = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "R", "message": "m", "extra": 1},
            {"type": "X", "status": "False", "reason": null},
            null
        ]}});
        let c = conditions(&ok).expect("valid");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].reason, "R");
        assert_eq!(c[1].reason, "");
        assert_eq!(c[2], BasicCondition::default());
        assert_eq!(
            find_condition(&c, "Ready", "True").map(|c| c.message.as_str()),
            Some("m")
        );

        for bad in [
            json!({"status": "x"}),
            json!({"status": {"conditions": {}}}),
            json!({"status": {"conditions": [1]}}),
            json!({"status": {"conditions": [{"type": 1}]}}),
        ] {
            assert!(conditions(&bad).is_err(), "{bad}");
        }
        for empty in [
            json!({}),
            json!({"status": null}),
            json!({"status": {}}),
            json!({"status": {"conditions": null}}),
        ] {
            assert_eq!(conditions(&empty), Ok(vec![]));
        }
    }

    #[test]
    fn groups() {
        assert_eq!(group(&json!({"apiVersion": "apps/v1"})), "apps");
        assert_eq!(group(&json!({"apiVersion": "v1"})), "");
        assert_eq!(group(&json!({})), "");
    }
}
