//! Durations as Flux writes them (`metav1.Duration`, e.g. `10m`, `1m30s`, `1h`), restricted to
//! what Flux's CRDs admit.

use std::fmt::Write as _;
use std::time::Duration;

/// The pattern Flux's CRDs put on intervals and timeouts.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// The pattern of `GitRepository.spec.timeout`, which does not admit hours.
pub const DURATION_PATTERN_NO_HOURS: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// Why a string is not a Flux duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string does not match [`DURATION_PATTERN`].
    #[error(
        "invalid duration {0:?}: want a sequence of <number><unit> with unit ms, s, m or h, e.g. 1m30s"
    )]
    Invalid(String),
    /// The duration is longer than Go's `time.Duration` can hold (about 292 years).
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_M: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_M;

/// Parses a duration that matches [`DURATION_PATTERN`]: one or more `<number><unit>` terms, where
/// the number may have a fraction and the unit is `ms`, `s`, `m` or `h` (`1m30s`, `10m`, `1.5h`).
///
/// Go's `time.ParseDuration` also admits signs and the units `ns`, `us` and `µs`; Flux's CRDs do
/// not, so neither does this.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_owned());
    let bytes = input.as_bytes();
    if bytes.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let whole = &input[start..i];
        let mut fraction = "";
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let fraction_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == fraction_start {
                return Err(invalid());
            }
            fraction = &input[fraction_start..i];
        }
        let unit = match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'm'), Some(b's')) => {
                i += 2;
                NANOS_PER_MS
            }
            (Some(b's'), _) => {
                i += 1;
                NANOS_PER_S
            }
            (Some(b'm'), _) => {
                i += 1;
                NANOS_PER_M
            }
            (Some(b'h'), _) => {
                i += 1;
                NANOS_PER_H
            }
            _ => return Err(invalid()),
        };
        let out_of_range = || DurationError::OutOfRange(input.to_owned());
        let whole: u128 = whole.parse().map_err(|_| out_of_range())?;
        let mut term = whole.checked_mul(unit).ok_or_else(out_of_range)?;
        // Fractional part: digits beyond nanosecond precision are dropped, as Go does.
        let mut scale = unit;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            term += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(term).ok_or_else(out_of_range)?;
        if total > i64::MAX as u128 {
            return Err(out_of_range());
        }
    }
    let seconds = u64::try_from(total / NANOS_PER_S).map_err(|_| invalid())?;
    let nanos = u32::try_from(total % NANOS_PER_S).map_err(|_| invalid())?;
    Ok(Duration::new(seconds, nanos))
}

/// Formats a duration the way Go's `time.Duration.String` does, which is how Flux reports
/// durations: `0s`, `500ms`, `1m30s`, `10m0s`, `1h0m0s`, `1.5s`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_S {
        let (divisor, unit) = if nanos < 1_000 {
            (1, "ns")
        } else if nanos < NANOS_PER_MS {
            (1_000, "µs")
        } else {
            (NANOS_PER_MS, "ms")
        };
        return format!("{}{unit}", decimal(nanos, divisor));
    }
    let hours = nanos / NANOS_PER_H;
    let minutes = (nanos % NANOS_PER_H) / NANOS_PER_M;
    let seconds = nanos % NANOS_PER_M;
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{}s", decimal(seconds, NANOS_PER_S));
    out
}

/// `value / divisor` as a decimal without trailing zeros; `divisor` is a power of ten.
fn decimal(value: u128, divisor: u128) -> String {
    let whole = value / divisor;
    let rest = value % divisor;
    if rest == 0 {
        return whole.to_string();
    }
    let width = divisor.ilog10() as usize;
    let fraction = format!("{rest:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flux_durations() {
        let cases = [
            ("1m30s", Duration::from_secs(90)),
            ("10m", Duration::from_secs(600)),
            ("1h", Duration::from_secs(3600)),
            ("60s", Duration::from_secs(60)),
            ("500ms", Duration::from_millis(500)),
            ("1.5h", Duration::from_secs(5400)),
            ("0.5s", Duration::from_millis(500)),
            ("1h2m3s4ms", Duration::new(3723, 4_000_000)),
            ("2m1m", Duration::from_secs(180)),
            ("0s", Duration::ZERO),
            ("1.0000000001s", Duration::from_secs(1)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_what_the_crd_pattern_rejects() {
        for input in [
            "", "10", "m", "1.m", ".5s", "-1m", "+1m", "1d", "1us", "1ns", "1 m", "1m ", "1M",
            "1hh", "1.5",
        ] {
            assert!(
                matches!(parse_duration(input), Err(DurationError::Invalid(_))),
                "{input:?} should be rejected"
            );
        }
        assert!(matches!(
            parse_duration("9999999999h"),
            Err(DurationError::OutOfRange(_))
        ));
    }

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(600), "10m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(15), "15ns"),
        ];
        for (duration, want) in cases {
            assert_eq!(format_duration(duration), want);
        }
    }

    #[test]
    fn format_then_parse_round_trips() {
        for secs in [1, 59, 60, 61, 3599, 3600, 86400, 90061] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
