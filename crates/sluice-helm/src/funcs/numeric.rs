//! sprig's numbers (`numeric.go` and the arithmetic in `functions.go`):
//! integers through spf13/cast's `ToInt64` (so `add` of two `float64`
//! values truncates each and returns an `int64`), the `...f` functions
//! through shopspring/decimal, `seq`/`until` bounded.

use super::go::{f64_to_i64, parse_float, parse_int};
use super::{FuncResult, Spec, Value, arg_float, arg_int, arg_str, check_items, failed, s, spec};

pub(super) const FUNCS: &[Spec] = &[
    spec!("atoi", 1, Some(1), |a| {
        let v = arg_str(a, 0)?;
        Ok(Value::Int(atoi(v)))
    }),
    spec!("int64", 1, Some(1), |a| Ok(Value::Int(to_int64(&a[0])))),
    spec!("int", 1, Some(1), |a| Ok(Value::Int(to_int64(&a[0])))),
    spec!("float64", 1, Some(1), |a| Ok(Value::Float(to_float64(
        &a[0]
    )))),
    spec!("toDecimal", 1, Some(1), |a| {
        Ok(Value::Int(parse_int(&a[0].go_string(), 8).unwrap_or(0)))
    }),
    spec!("seq", 0, None, seq),
    spec!("until", 1, Some(1), |a| {
        let n = arg_int(a, 0)?;
        ints("until", 0, n, if n < 0 { -1 } else { 1 })
    }),
    spec!("untilStep", 3, Some(3), |a| {
        ints("untilStep", arg_int(a, 0)?, arg_int(a, 1)?, arg_int(a, 2)?)
    }),
    spec!("add1", 1, Some(1), |a| Ok(Value::Int(
        to_int64(&a[0]).wrapping_add(1)
    ))),
    spec!("add", 0, None, |a| {
        Ok(Value::Int(
            a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_int64(v))),
        ))
    }),
    spec!("sub", 2, Some(2), |a| {
        Ok(Value::Int(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    }),
    spec!("div", 2, Some(2), |a| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return Err(failed("runtime error: integer divide by zero"));
        }
        Ok(Value::Int(x.wrapping_div(y)))
    }),
    spec!("mod", 2, Some(2), |a| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return Err(failed("runtime error: integer divide by zero"));
        }
        Ok(Value::Int(x.wrapping_rem(y)))
    }),
    spec!("mul", 1, None, |a| {
        Ok(Value::Int(a[1..].iter().fold(to_int64(&a[0]), |acc, v| {
            acc.wrapping_mul(to_int64(v))
        })))
    }),
    spec!("randInt", 2, Some(2), |a| {
        let (lo, hi) = (arg_int(a, 0)?, arg_int(a, 1)?);
        let n = hi.wrapping_sub(lo);
        if n <= 0 {
            return Err(failed("invalid argument to Intn"));
        }
        let r = super::crypto::random_u64()? % (n as u64);
        Ok(Value::Int(lo.wrapping_add(r as i64)))
    }),
    spec!("add1f", 1, Some(1), |a| decimal_op(
        &a[0],
        &[Value::Int(1)],
        Op::Add
    )),
    spec!("addf", 0, None, |a| decimal_op(
        &Value::Float(0.0),
        a,
        Op::Add
    )),
    spec!("subf", 1, None, |a| decimal_op(&a[0], &a[1..], Op::Sub)),
    spec!("divf", 1, None, |a| decimal_op(&a[0], &a[1..], Op::Div)),
    spec!("mulf", 1, None, |a| decimal_op(&a[0], &a[1..], Op::Mul)),
    spec!("biggest", 1, None, |a| {
        Ok(Value::Int(
            a[1..].iter().map(to_int64).fold(to_int64(&a[0]), i64::max),
        ))
    }),
    spec!("max", 1, None, |a| {
        Ok(Value::Int(
            a[1..].iter().map(to_int64).fold(to_int64(&a[0]), i64::max),
        ))
    }),
    spec!("min", 1, None, |a| {
        Ok(Value::Int(
            a[1..].iter().map(to_int64).fold(to_int64(&a[0]), i64::min),
        ))
    }),
    spec!("maxf", 1, None, |a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&a[0]), go_max),
        ))
    }),
    spec!("minf", 1, None, |a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&a[0]), go_min),
        ))
    }),
    spec!("ceil", 1, Some(1), |a| Ok(Value::Float(
        to_float64(&a[0]).ceil()
    ))),
    spec!("floor", 1, Some(1), |a| Ok(Value::Float(
        to_float64(&a[0]).floor()
    ))),
    spec!("round", 2, Some(3), round),
];

/// spf13/cast `ToInt64` with its error ignored (sprig's `toInt64`).
pub(crate) fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Nil => 0,
        Value::Bool(b) => i64::from(*b),
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => f64_to_i64(*f),
        Value::String(t) => parse_int(trim_zero_decimal(t), 0).unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast `ToFloat64` with its error ignored.
pub(crate) fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Nil => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::String(t) => parse_float(t).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// cast's `trimZeroDecimal`: `"12.00"` reads as `"12"`.
fn trim_zero_decimal(t: &str) -> &str {
    let b = t.as_bytes();
    let mut found_zero = false;
    for i in (0..b.len()).rev() {
        match b[i] {
            b'.' => {
                if found_zero {
                    return &t[..i];
                }
                return t;
            }
            b'0' => found_zero = true,
            _ => return t,
        }
    }
    t
}

/// `strconv.Atoi` with its error ignored.
fn atoi(v: &str) -> i64 {
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    parse_int(v, 10).unwrap_or(0)
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

/// sprig's `untilStep`, bounded.
fn until_step(
    name: &str,
    start: i64,
    stop: i64,
    step: i64,
) -> Result<Vec<i64>, crate::template::FuncError> {
    let count: u128 = if stop < start {
        if step >= 0 {
            return Ok(Vec::new());
        }
        let span = (i128::from(start) - i128::from(stop)) as u128;
        span.div_ceil(step.unsigned_abs() as u128)
    } else {
        if step <= 0 {
            return Ok(Vec::new());
        }
        let span = (i128::from(stop) - i128::from(start)) as u128;
        span.div_ceil(step as u128)
    };
    check_items(name, count)?;
    let mut out = Vec::with_capacity(count as usize);
    let mut i = i128::from(start);
    for _ in 0..count {
        out.push(i as i64);
        i += i128::from(step);
    }
    Ok(out)
}

fn ints(name: &str, start: i64, stop: i64, step: i64) -> FuncResult {
    Ok(Value::list(
        until_step(name, start, stop, step)?
            .into_iter()
            .map(Value::Int)
            .collect(),
    ))
}

fn seq(a: &[Value]) -> FuncResult {
    let p: Vec<i64> = (0..a.len())
        .map(|i| arg_int(a, i))
        .collect::<Result<_, _>>()?;
    let list = match p.as_slice() {
        [end] => {
            let inc = if *end < 1 { -1 } else { 1 };
            until_step("seq", 1, end.saturating_add(inc), inc)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            until_step("seq", *start, end.saturating_add(step), step)?
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if *step > 0 {
                    return Ok(s(""));
                }
            }
            until_step("seq", *start, end.saturating_add(inc), *step)?
        }
        _ => return Ok(s("")),
    };
    let parts: Vec<String> = list.iter().map(i64::to_string).collect();
    Ok(s(parts.join(" ")))
}

fn round(a: &[Value]) -> FuncResult {
    let places = arg_int(a, 1)?;
    let round_on = if a.len() > 2 { arg_float(a, 2)? } else { 0.5 };
    let val = to_float64(&a[0]);
    let pow = 10f64.powf(places as f64);
    let digit = pow * val;
    let frac = digit - digit.trunc();
    let r = if frac >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(r / pow))
}

// ---------------------------------------------------------------------------
// shopspring/decimal, as far as `addf`/`subf`/`mulf`/`divf` use it: each
// float is read at its shortest decimal form, the operation is exact
// (division rounded half away from zero to 16 places), the result read
// back as the nearest float64.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy, Debug)]
struct Decimal {
    mant: i128,
    exp: i32,
}

impl Decimal {
    fn from_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        let t = format!("{f:e}");
        let (m, e) = t.split_once('e')?;
        let exp: i32 = e.parse().ok()?;
        let neg = m.starts_with('-');
        let m = m.trim_start_matches('-');
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        let digits = format!("{int}{frac}");
        let mut mant: i128 = digits.parse().ok()?;
        if neg {
            mant = -mant;
        }
        Some(Decimal {
            mant,
            exp: exp - frac.len() as i32,
        })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.mant, self.exp)
            .parse()
            .unwrap_or(f64::NAN)
    }

    fn rescale(self, exp: i32) -> Option<i128> {
        // exp <= self.exp
        let k = u32::try_from(self.exp - exp).ok()?;
        self.mant.checked_mul(10i128.checked_pow(k)?)
    }

    fn apply(self, op: Op, o: Decimal) -> Option<Decimal> {
        match op {
            Op::Add | Op::Sub => {
                let exp = self.exp.min(o.exp);
                let a = self.rescale(exp)?;
                let b = o.rescale(exp)?;
                let mant = match op {
                    Op::Add => a.checked_add(b)?,
                    _ => a.checked_sub(b)?,
                };
                Some(Decimal { mant, exp })
            }
            Op::Mul => Some(Decimal {
                mant: self.mant.checked_mul(o.mant)?,
                exp: self.exp.checked_add(o.exp)?,
            }),
            Op::Div => {
                let k = self.exp - o.exp + 16;
                let (num, den) = if k >= 0 {
                    (
                        self.mant.checked_mul(10i128.checked_pow(k as u32)?)?,
                        o.mant,
                    )
                } else {
                    (
                        self.mant,
                        o.mant.checked_mul(10i128.checked_pow((-k) as u32)?)?,
                    )
                };
                let q = num / den;
                let r = num % den;
                let q = if r.unsigned_abs().checked_mul(2)? >= den.unsigned_abs() {
                    if (num < 0) != (den < 0) { q - 1 } else { q + 1 }
                } else {
                    q
                };
                Some(Decimal { mant: q, exp: -16 })
            }
        }
    }
}

fn decimal_op(first: &Value, rest: &[Value], op: Op) -> FuncResult {
    let nan = |f: f64| {
        failed(if f.is_nan() {
            "Cannot create a Decimal from NaN".to_string()
        } else {
            format!(
                "Cannot create a Decimal from {}",
                crate::gofmt::format_g64(f)
            )
        })
    };
    let f0 = to_float64(first);
    let mut acc = Decimal::from_f64(f0).ok_or_else(|| nan(f0))?;
    let mut approx = f0;
    let mut exact = true;
    for v in rest {
        let f = to_float64(v);
        let d = Decimal::from_f64(f).ok_or_else(|| nan(f))?;
        if let Op::Div = op
            && d.mant == 0
        {
            return Err(failed("decimal division by 0"));
        }
        approx = match op {
            Op::Add => approx + f,
            Op::Sub => approx - f,
            Op::Mul => approx * f,
            Op::Div => approx / f,
        };
        if exact {
            match acc.apply(op, d) {
                Some(n) => acc = n,
                None => exact = false,
            }
        }
    }
    // Past i128 (exponents far apart), the float result is the answer.
    Ok(Value::Float(if exact { acc.to_f64() } else { approx }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_ops_are_exact() {
        let f = |v: Value| match v {
            Value::Float(f) => f,
            _ => f64::NAN,
        };
        let r = decimal_op(
            &Value::Float(0.0),
            &[Value::Float(1.1), Value::Float(2.2)],
            Op::Add,
        );
        assert_eq!(r.map(f), Ok(3.3));
        let r = decimal_op(&Value::Float(10.0), &[Value::Float(3.0)], Op::Div);
        assert_eq!(r.map(f), Ok(3.3333333333333335));
        let r = decimal_op(&Value::Float(1.1), &[Value::Float(3.0)], Op::Mul);
        assert_eq!(r.map(f), Ok(3.3));
    }
}
