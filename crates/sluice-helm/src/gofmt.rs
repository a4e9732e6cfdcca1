//! Go's number formatting where Helm's YAML handling shows it: a number
//! read into a string field of `Chart.yaml` becomes
//! `strconv.FormatFloat(f, 'g', -1, 32)` (so `appVersion: 1.10` is "1.1"),
//! and a number used as a map key `FormatFloat(f, 'g', -1, 64)`.

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`.
pub(crate) fn format_g32(f: f64) -> String {
    let x = f as f32;
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // Rust's `{:e}` prints the shortest digits that read back as the same
    // f32, as Go's shortest formatting does.
    format_g_from_exp(&format!("{x:e}"))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn format_g64(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    format_g_from_exp(&format!("{f:e}"))
}

/// `s` is Rust's `{:e}` form (`-1.25e-7`, `3e0`); returns Go's `%g` with
/// the shortest precision.
fn format_g_from_exp(s: &str) -> String {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if digits == "0" {
        out.push('0');
        return out;
    }
    fmt_g(&mut out, digits, exp);
    out
}

/// Go's 'g' with shortest precision: digits `d1 d2 ...` with the decimal
/// exponent of `d1` (value = d1.d2... × 10^exp).
fn fmt_g(out: &mut String, digits: &str, exp: i32) {
    // With the shortest precision Go picks %e when the exponent is below
    // -4 or at least 6 (whatever the number of digits).
    let nd = digits.len() as i32;
    if !(-4..6).contains(&exp) {
        // %e with nd-1 fraction digits, exponent at least two digits.
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
        return;
    }
    // %f with max(nd - (exp+1), 0) fraction digits.
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(digits);
    } else if dp >= nd {
        out.push_str(digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g32_is_gos() {
        assert_eq!(format_g32(1.10), "1.1");
        assert_eq!(format_g32(1.0), "1");
        assert_eq!(format_g32(0.1), "0.1");
        assert_eq!(format_g32(1.23456789), "1.2345679");
        assert_eq!(format_g32(1e6), "1e+06");
        assert_eq!(format_g32(123456.0), "123456");
        assert_eq!(format_g32(0.0001), "0.0001");
        assert_eq!(format_g32(0.00001), "1e-05");
        assert_eq!(format_g32(-2.5), "-2.5");
        assert_eq!(format_g32(0.0), "0");
        assert_eq!(format_g32(1.5e10), "1.5e+10");
    }

    #[test]
    fn g64_is_gos() {
        assert_eq!(format_g64(1.1), "1.1");
        assert_eq!(format_g64(1.23456789), "1.23456789");
        assert_eq!(format_g64(1e21), "1e+21");
        assert_eq!(format_g64(100000.0), "100000");
        assert_eq!(format_g64(1000000.0), "1e+06");
    }
}
