//! sprig's dates (`date.go`): `now`, `date`, `dateInZone`, `htmlDate`,
//! `toDate`, `ago`, `duration`, `durationRound`, `unixEpoch`,
//! `dateModify`, with Go's `time` layouts (`2006-01-02T15:04:05Z07:00`)
//! and `Duration` printing.
//!
//! Zones: `UTC` and `Local` are UTC (Helm in a container without `TZ`);
//! another zone name would need the system's zone database, which Go
//! reads and sluice does not: it falls back to UTC, as sprig does for a
//! zone it cannot load. `now` reads the system clock: tests compare its
//! shape, never its value.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{FuncResult, Spec, Value, arg_str, failed, s, spec};
use crate::template::{FuncError, Object};

pub(super) const FUNCS: &[Spec] = &[
    spec!("now", 0, Some(0), |_| Ok(GoTime::now().into_value())),
    spec!("date", 2, Some(2), |a| {
        let layout = arg_str(a, 0)?;
        Ok(s(local(time_arg(&a[1])).format(layout)))
    }),
    spec!("dateInZone", 3, Some(3), date_in_zone),
    spec!("date_in_zone", 3, Some(3), date_in_zone),
    spec!("htmlDate", 1, Some(1), |a| Ok(s(
        local(time_arg(&a[0])).format("2006-01-02")
    ))),
    spec!("htmlDateInZone", 2, Some(2), |a| {
        arg_str(a, 1)?;
        Ok(s(local(time_arg(&a[0])).format("2006-01-02")))
    }),
    spec!("dateModify", 2, Some(2), |a| date_modify(a, false)),
    spec!("date_modify", 2, Some(2), |a| date_modify(a, false)),
    spec!("mustDateModify", 2, Some(2), |a| date_modify(a, true)),
    spec!("must_date_modify", 2, Some(2), |a| date_modify(a, true)),
    spec!("toDate", 2, Some(2), |a| {
        let (layout, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
        Ok(parse(layout, v)
            .unwrap_or_else(|_| GoTime::zero())
            .into_value())
    }),
    spec!("mustToDate", 2, Some(2), |a| {
        let (layout, v) = (arg_str(a, 0)?, arg_str(a, 1)?);
        Ok(parse(layout, v).map_err(failed)?.into_value())
    }),
    spec!("ago", 1, Some(1), |a| {
        let t = time_arg(&a[0]);
        let now = GoTime::now();
        let d = (i128::from(now.secs) - i128::from(t.secs)) * 1_000_000_000 + i128::from(now.nanos)
            - i128::from(t.nanos);
        let d = clamp_i64(d);
        Ok(s(fmt_duration(round_duration(d, 1_000_000_000))))
    }),
    spec!("duration", 1, Some(1), |a| {
        let n: i64 = match &a[0] {
            Value::String(v) => super::go::parse_int(v, 10).unwrap_or(0),
            // sprig takes int64; template constants are int in Go (and
            // would give 0s) but sprig's arithmetic results are int64.
            Value::Int(i) => *i,
            _ => 0,
        };
        Ok(s(fmt_duration(n.wrapping_mul(1_000_000_000))))
    }),
    spec!("durationRound", 1, Some(1), |a| {
        let d: i64 = match &a[0] {
            Value::String(v) => parse_duration(v).unwrap_or(0),
            Value::Int(i) => *i,
            Value::Object(o) => match o.as_any().downcast_ref::<GoTime>() {
                Some(t) => {
                    let now = GoTime::now();
                    clamp_i64(
                        (i128::from(now.secs) - i128::from(t.secs)) * 1_000_000_000
                            + i128::from(now.nanos)
                            - i128::from(t.nanos),
                    )
                }
                None => 0,
            },
            _ => 0,
        };
        Ok(s(duration_round(d)))
    }),
    spec!("unixEpoch", 1, Some(1), |a| match time_of(&a[0]) {
        Some(t) => Ok(s(t.secs.to_string())),
        None => Err(FuncError::arg_type(0, "time.Time")),
    }),
];

/// `t.In(time.Local)` with Local being UTC (see the module comment).
fn local(t: GoTime) -> GoTime {
    GoTime {
        offset: 0,
        zone: "UTC".into(),
        ..t
    }
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A Go `time.Time`: an instant and the zone it is shown in.
#[derive(Debug, Clone, PartialEq)]
pub struct GoTime {
    pub secs: i64,
    pub nanos: u32,
    /// Seconds east of UTC.
    pub offset: i32,
    pub zone: String,
}

impl GoTime {
    pub fn now() -> GoTime {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        GoTime {
            secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: d.subsec_nanos(),
            offset: 0,
            zone: "UTC".into(),
        }
    }

    pub fn unix(secs: i64) -> GoTime {
        GoTime {
            secs,
            nanos: 0,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }

    /// Civil fields in the time's own zone.
    fn civil(&self) -> Civil {
        civil(self.secs + i64::from(self.offset))
    }

    /// Go's `Time.Format(layout)`.
    pub fn format(&self, layout: &str) -> String {
        format(self, layout)
    }

    fn add_nanos(&self, d: i64) -> GoTime {
        let total = i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos) + i128::from(d);
        GoTime {
            secs: clamp_i64(total.div_euclid(1_000_000_000)),
            nanos: total.rem_euclid(1_000_000_000) as u32,
            offset: self.offset,
            zone: self.zone.clone(),
        }
    }
}

impl Object for GoTime {
    fn type_name(&self) -> &str {
        "time.Time"
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Unix"
                | "UnixMilli"
                | "UnixNano"
                | "Year"
                | "YearDay"
                | "Day"
                | "Hour"
                | "Minute"
                | "Second"
                | "Nanosecond"
                | "Format"
                | "UTC"
                | "String"
                | "IsZero"
        )
    }
    fn call(&self, method: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let want = if method == "Format" { 1 } else { 0 };
        if self.has_method(method) && args.len() != want {
            return Some(Err(FuncError::arity(method, want, args.len())));
        }
        let c = self.civil();
        let v = match method {
            "Unix" => Value::Int(self.secs),
            "UnixMilli" => Value::Int(
                self.secs
                    .saturating_mul(1000)
                    .saturating_add(i64::from(self.nanos / 1_000_000)),
            ),
            "UnixNano" => Value::Int(
                self.secs
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(self.nanos)),
            ),
            "Year" => Value::Int(c.year),
            "YearDay" => Value::Int(c.yday),
            "Day" => Value::Int(c.day),
            "Hour" => Value::Int(c.hour),
            "Minute" => Value::Int(c.min),
            "Second" => Value::Int(c.sec),
            "Nanosecond" => Value::Int(i64::from(self.nanos)),
            "IsZero" => Value::Bool(self.secs == ZERO_SECS && self.nanos == 0),
            "Format" => match &args[0] {
                Value::String(l) => Value::String(self.format(l)),
                other => return Some(Err(FuncError::wrong_type("string", other))),
            },
            "UTC" => GoTime {
                offset: 0,
                zone: "UTC".into(),
                ..self.clone()
            }
            .into_value(),
            "String" => Value::String(self.display()),
            _ => return None,
        };
        Some(Ok(v))
    }
    fn display(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }
    fn to_value(&self) -> Option<Value> {
        Some(Value::String(
            self.format("2006-01-02T15:04:05.999999999Z07:00"),
        ))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Go's zero `time.Time` (January 1, year 1, UTC) in Unix seconds.
const ZERO_SECS: i64 = -62_135_596_800;

impl GoTime {
    fn zero() -> GoTime {
        GoTime::unix(ZERO_SECS)
    }
}

fn time_of(v: &Value) -> Option<GoTime> {
    match v {
        Value::Object(o) => o.as_any().downcast_ref::<GoTime>().cloned(),
        _ => None,
    }
}

/// sprig's date argument: a `time.Time`, Unix seconds as an integer, or
/// anything else meaning now.
fn time_arg(v: &Value) -> GoTime {
    match v {
        Value::Int(i) => GoTime::unix(*i),
        other => time_of(other).unwrap_or_else(GoTime::now),
    }
}

fn date_in_zone(a: &[Value]) -> FuncResult {
    let layout = arg_str(a, 0)?;
    arg_str(a, 2)?;
    let t = time_arg(&a[1]);
    // Every zone is shown as UTC (see the module comment).
    let t = GoTime {
        offset: 0,
        zone: "UTC".into(),
        ..t
    };
    Ok(s(t.format(layout)))
}

fn date_modify(a: &[Value], must: bool) -> FuncResult {
    let spec = arg_str(a, 0)?;
    let Some(t) = time_of(&a[1]) else {
        return Err(FuncError::arg_type(1, "time.Time"));
    };
    match parse_duration(spec) {
        Ok(d) => Ok(t.add_nanos(d).into_value()),
        Err(e) if must => Err(failed(e)),
        Err(_) => Ok(t.into_value()),
    }
}

// ---------------------------------------------------------------------------
// Civil time.
// ---------------------------------------------------------------------------

struct Civil {
    year: i64,
    month: i64,
    day: i64,
    yday: i64,
    wday: i64,
    hour: i64,
    min: i64,
    sec: i64,
}

/// The UTC calendar date (year, month, day) of a Unix time.
pub(crate) fn ymd(secs: i64) -> (i64, i64, i64) {
    let c = civil(secs);
    (c.year, c.month, c.day)
}

/// Howard Hinnant's `civil_from_days`.
fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut year = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    if month <= 2 {
        year += 1;
    }
    let yday = days - days_from_civil(year, 1, 1) + 1;
    Civil {
        year,
        month,
        day,
        yday,
        wday: (days + 4).rem_euclid(7),
        hour: rem / 3600,
        min: rem % 3600 / 60,
        sec: rem % 60,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

// ---------------------------------------------------------------------------
// Go's layouts.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// Numeric zone: (ISO 8601 `Z` for UTC, colons, with seconds, hours only).
    NumTz(bool, bool, bool, bool),
    /// Fractional seconds: separator, digits, trailing zeros trimmed.
    Frac(char, usize, bool),
}

/// Go's `nextStdChunk`: the literal prefix, the element, the rest.
fn next_std(layout: &str) -> (&str, Option<(Std, usize)>) {
    let b = layout.as_bytes();
    let at = |i: usize, p: &str| layout.get(i..).is_some_and(|r| r.starts_with(p));
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if at(i, "Jan") => Some((Std::Month, 3)),
            b'M' if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") => Some((Std::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                [
                    Std::ZeroMonth,
                    Std::ZeroDay,
                    Std::ZeroHour12,
                    Std::ZeroMinute,
                    Std::ZeroSecond,
                    Std::Year,
                ][usize::from(b[i + 1] - b'1')],
                2,
            )),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2006") => {
                // '_' is a literal before a year.
                return (&layout[..i + 1], Some((Std::LongYear, 4)));
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'_' if at(i, "_2") => Some((Std::UnderDay, 2)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::PM, 2)),
            b'p' if at(i, "pm") => Some((Std::Pm, 2)),
            b'-' if at(i, "-070000") => Some((Std::NumTz(false, false, true, false), 7)),
            b'-' if at(i, "-07:00:00") => Some((Std::NumTz(false, true, true, false), 9)),
            b'-' if at(i, "-0700") => Some((Std::NumTz(false, false, false, false), 5)),
            b'-' if at(i, "-07:00") => Some((Std::NumTz(false, true, false, false), 6)),
            b'-' if at(i, "-07") => Some((Std::NumTz(false, false, false, true), 3)),
            b'Z' if at(i, "Z070000") => Some((Std::NumTz(true, false, true, false), 7)),
            b'Z' if at(i, "Z07:00:00") => Some((Std::NumTz(true, true, true, false), 9)),
            b'Z' if at(i, "Z0700") => Some((Std::NumTz(true, false, false, false), 5)),
            b'Z' if at(i, "Z07:00") => Some((Std::NumTz(true, true, false, false), 6)),
            b'Z' if at(i, "Z07") => Some((Std::NumTz(true, false, false, true), 3)),
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    Some((Std::Frac(char::from(b[i]), j - i - 1, ch == b'9'), j - i))
                }
            }
            _ => None,
        };
        if let Some(f) = found {
            return (&layout[..i], Some(f));
        }
    }
    (layout, None)
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let digits = v.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

fn format(t: &GoTime, layout: &str) -> String {
    let c = t.civil();
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    loop {
        let (lit, std) = next_std(rest);
        out.push_str(lit);
        let Some((std, len)) = std else {
            break;
        };
        rest = &rest[lit.len() + len..];
        let month = usize::try_from(c.month - 1).unwrap_or(0).min(11);
        let wday = usize::try_from(c.wday).unwrap_or(0).min(6);
        match std {
            Std::LongMonth => out.push_str(MONTHS[month]),
            Std::Month => out.push_str(&MONTHS[month][..3]),
            Std::NumMonth => pad(&mut out, c.month, 0),
            Std::ZeroMonth => pad(&mut out, c.month, 2),
            Std::LongWeekDay => out.push_str(DAYS[wday]),
            Std::WeekDay => out.push_str(&DAYS[wday][..3]),
            Std::Day => pad(&mut out, c.day, 0),
            Std::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                pad(&mut out, c.day, 0);
            }
            Std::ZeroDay => pad(&mut out, c.day, 2),
            Std::UnderYearDay => {
                if c.yday < 100 {
                    out.push(' ');
                    if c.yday < 10 {
                        out.push(' ');
                    }
                }
                pad(&mut out, c.yday, 0);
            }
            Std::ZeroYearDay => pad(&mut out, c.yday, 3),
            Std::Hour => pad(&mut out, c.hour, 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = match c.hour % 12 {
                    0 => 12,
                    h => h,
                };
                pad(&mut out, h, if std == Std::Hour12 { 0 } else { 2 });
            }
            Std::Minute => pad(&mut out, c.min, 0),
            Std::ZeroMinute => pad(&mut out, c.min, 2),
            Std::Second => pad(&mut out, c.sec, 0),
            Std::ZeroSecond => pad(&mut out, c.sec, 2),
            Std::LongYear => pad(&mut out, c.year, 4),
            Std::Year => pad(&mut out, c.year.rem_euclid(100), 2),
            Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                if !t.zone.is_empty() {
                    out.push_str(&t.zone);
                } else {
                    let z = t.offset / 60;
                    out.push(if z < 0 { '-' } else { '+' });
                    pad(&mut out, i64::from(z.abs() / 60), 2);
                    pad(&mut out, i64::from(z.abs() % 60), 2);
                }
            }
            Std::NumTz(iso, colon, secs, hours_only) => {
                if iso && t.offset == 0 {
                    out.push('Z');
                    continue;
                }
                let z = t.offset.abs();
                out.push(if t.offset < 0 { '-' } else { '+' });
                pad(&mut out, i64::from(z / 3600), 2);
                if !hours_only {
                    if colon {
                        out.push(':');
                    }
                    pad(&mut out, i64::from(z / 60 % 60), 2);
                }
                if secs {
                    if colon {
                        out.push(':');
                    }
                    pad(&mut out, i64::from(z % 60), 2);
                }
            }
            Std::Frac(sep, digits, trim) => {
                let mut frac = format!("{:09}", t.nanos);
                frac.truncate(digits.min(9));
                if trim {
                    let f = frac.trim_end_matches('0');
                    if !f.is_empty() {
                        out.push(sep);
                        out.push_str(f);
                    }
                } else {
                    out.push(sep);
                    out.push_str(&frac);
                }
            }
        }
    }
    out
}

/// Go's `time.ParseInLocation(layout, value, time.Local)` with Local as
/// UTC; the error reads as Go's `parsing time "v" as "layout": cannot
/// parse "rest" as "elem"`.
pub(crate) fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let err = |rest: &str, elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            super::go::quote(value),
            super::go::quote(layout),
            super::go::quote(rest),
            super::go::quote(elem)
        )
    };
    let (mut year, mut month, mut day) = (1i64, 1i64, 1i64);
    let (mut hour, mut min, mut sec, mut nanos) = (0i64, 0i64, 0i64, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut zone = String::new();
    let mut lay = layout;
    let mut v = value;
    let num = |v: &mut &str, min_digits: usize, max_digits: usize| -> Option<i64> {
        let n = v
            .bytes()
            .take(max_digits)
            .take_while(u8::is_ascii_digit)
            .count();
        if n < min_digits {
            return None;
        }
        let x = v[..n].parse().ok()?;
        *v = &v[n..];
        Some(x)
    };
    loop {
        let (lit, std) = next_std(lay);
        let Some(r) = v.strip_prefix(lit) else {
            return Err(err(v, lit));
        };
        v = r;
        let Some((std, len)) = std else {
            if !v.is_empty() {
                return Err(format!(
                    "parsing time {}: extra text: {}",
                    super::go::quote(value),
                    super::go::quote(v)
                ));
            }
            break;
        };
        let elem = &lay[lit.len()..lit.len() + len];
        lay = &lay[lit.len() + len..];
        let before = v;
        let bad = || err(before, elem);
        match std {
            Std::LongYear => {
                year = num(&mut v, 4, 4).ok_or_else(bad)?;
            }
            Std::Year => {
                let y = num(&mut v, 2, 2).ok_or_else(bad)?;
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            Std::LongMonth | Std::Month => {
                let idx = MONTHS.iter().position(|m| {
                    let m = if std == Std::Month { &m[..3] } else { m };
                    v.len() >= m.len() && v[..m.len()].eq_ignore_ascii_case(m)
                });
                let i = idx.ok_or_else(bad)?;
                let l = if std == Std::Month {
                    3
                } else {
                    MONTHS[i].len()
                };
                v = &v[l..];
                month = i as i64 + 1;
            }
            Std::LongWeekDay | Std::WeekDay => {
                let idx = DAYS.iter().position(|d| {
                    let d = if std == Std::WeekDay { &d[..3] } else { d };
                    v.len() >= d.len() && v[..d.len()].eq_ignore_ascii_case(d)
                });
                let i = idx.ok_or_else(bad)?;
                v = &v[if std == Std::WeekDay {
                    3
                } else {
                    DAYS[i].len()
                }..];
            }
            Std::NumMonth | Std::ZeroMonth => {
                let min = if std == Std::ZeroMonth { 2 } else { 1 };
                month = num(&mut v, min, 2).ok_or_else(bad)?;
                if !(1..=12).contains(&month) {
                    return Err(format!(
                        "parsing time {}: month out of range",
                        super::go::quote(value)
                    ));
                }
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay {
                    v = v.strip_prefix(' ').unwrap_or(v);
                }
                let min = if std == Std::ZeroDay { 2 } else { 1 };
                day = num(&mut v, min, 2).ok_or_else(bad)?;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                v = v.trim_start_matches(' ');
                num(&mut v, 1, 3).ok_or_else(bad)?;
            }
            Std::Hour => hour = num(&mut v, 2, 2).ok_or_else(bad)?,
            Std::Hour12 | Std::ZeroHour12 => {
                hour = num(&mut v, if std == Std::Hour12 { 1 } else { 2 }, 2).ok_or_else(bad)?;
            }
            Std::Minute | Std::ZeroMinute => {
                min = num(&mut v, if std == Std::Minute { 1 } else { 2 }, 2).ok_or_else(bad)?;
            }
            Std::Second | Std::ZeroSecond => {
                sec = num(&mut v, if std == Std::Second { 1 } else { 2 }, 2).ok_or_else(bad)?;
                // Go accepts fractional seconds after seconds even when the
                // layout has none.
                if let Some(r) = v.strip_prefix(['.', ','])
                    && r.starts_with(|c: char| c.is_ascii_digit())
                    && !lay.starts_with(['.', ','])
                {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    nanos = frac_nanos(&r[..n]);
                    v = &r[n..];
                }
            }
            Std::PM | Std::Pm => {
                let p = v.get(..2).ok_or_else(bad)?;
                pm = Some(match p.to_ascii_uppercase().as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return Err(bad()),
                });
                v = &v[2..];
            }
            Std::Tz => {
                if v.starts_with("UTC") {
                    zone = "UTC".into();
                    v = &v[3..];
                } else {
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return Err(bad());
                    }
                    zone = v[..n].to_string();
                    v = &v[n..];
                }
            }
            Std::NumTz(iso, colon, secs, hours_only) => {
                if iso && v.starts_with('Z') {
                    v = &v[1..];
                    offset = Some(0);
                    continue;
                }
                let sign = match v.as_bytes().first() {
                    Some(b'+') => 1,
                    Some(b'-') => -1,
                    _ => return Err(bad()),
                };
                v = &v[1..];
                let h = num(&mut v, 2, 2).ok_or_else(bad)?;
                let mut m = 0;
                let mut sx = 0;
                if !hours_only {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(bad)?;
                    }
                    m = num(&mut v, 2, 2).ok_or_else(bad)?;
                }
                if secs {
                    if colon {
                        v = v.strip_prefix(':').ok_or_else(bad)?;
                    }
                    sx = num(&mut v, 2, 2).ok_or_else(bad)?;
                }
                offset = Some(sign * (h * 3600 + m * 60 + sx) as i32);
            }
            Std::Frac(_, digits, trim) => {
                let Some(r) = v.strip_prefix(['.', ',']) else {
                    if trim {
                        continue;
                    }
                    return Err(bad());
                };
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if !trim && n != digits {
                    return Err(bad());
                }
                nanos = frac_nanos(&r[..n]);
                v = &r[n..];
            }
        }
    }
    if let Some(p) = pm {
        if p && hour < 12 {
            hour += 12;
        } else if !p && hour == 12 {
            hour = 0;
        }
    }
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return Err(format!(
            "parsing time {}: day out of range",
            super::go::quote(value)
        ));
    }
    let days = days_from_civil(year, month, day);
    let off = offset.unwrap_or(0);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - i64::from(off);
    Ok(GoTime {
        secs,
        nanos,
        offset: off,
        zone: if offset.is_some() {
            String::new()
        } else if zone.is_empty() {
            "UTC".into()
        } else {
            zone
        },
    })
}

fn frac_nanos(digits: &str) -> u32 {
    let mut d = digits.to_string();
    d.truncate(9);
    while d.len() < 9 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Durations.
// ---------------------------------------------------------------------------

/// Go's `Duration.String()`.
pub(crate) fn fmt_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, prec) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        out.push_str(&frac_str(u, prec));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let (h, m, sx) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&sx.to_string());
        if frac > 0 {
            let f = format!("{frac:09}");
            out.push('.');
            out.push_str(f.trim_end_matches('0'));
        }
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn frac_str(u: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let (int, frac) = (u / p, u % p);
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// Go's `Duration.Round(m)`: half away from zero.
fn round_duration(d: i64, m: i64) -> i64 {
    let r = d % m;
    if d < 0 {
        let r = -r;
        if r + r < m {
            d + r
        } else {
            d.checked_sub(m - r).unwrap_or(i64::MIN)
        }
    } else if r + r < m {
        d - r
    } else {
        d.checked_add(m - r).unwrap_or(i64::MAX)
    }
}

/// sprig's `durationRound`: the largest whole unit (y, mo, d, h, m, s).
fn duration_round(d: i64) -> String {
    let u = d.unsigned_abs();
    const SEC: u64 = 1_000_000_000;
    let units: [(u64, &str); 6] = [
        (SEC * 3600 * 24 * 365, "y"),
        (SEC * 3600 * 24 * 30, "mo"),
        (SEC * 3600 * 24, "d"),
        (SEC * 3600, "h"),
        (SEC * 60, "m"),
        (SEC, "s"),
    ];
    for (n, name) in units {
        if u > n {
            return format!("{}{name}", u / n);
        }
    }
    "0s".into()
}

/// Go's `time.ParseDuration`.
pub(crate) fn parse_duration(v: &str) -> Result<i64, String> {
    let orig = v;
    let bad = || format!("time: invalid duration {}", super::go::quote(orig));
    let (neg, mut v) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if v == "0" {
        return Ok(0);
    }
    if v.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !v.is_empty() {
        let n = v.bytes().take_while(u8::is_ascii_digit).count();
        let int: u128 = if n > 0 {
            v[..n].parse().map_err(|_| bad())?
        } else {
            0
        };
        v = &v[n..];
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        let mut fd = 0;
        if let Some(r) = v.strip_prefix('.') {
            fd = r.bytes().take_while(u8::is_ascii_digit).count();
            for c in r[..fd].bytes().take(18) {
                frac = frac * 10 + u128::from(c - b'0');
                scale *= 10;
            }
            v = &r[fd..];
        }
        if n == 0 && fd == 0 {
            return Err(bad());
        }
        let u = v
            .bytes()
            .take_while(|c| *c != b'.' && !c.is_ascii_digit())
            .count();
        if u == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                super::go::quote(orig)
            ));
        }
        let unit: u128 = match &v[..u] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    super::go::quote(other),
                    super::go::quote(orig)
                ));
            }
        };
        v = &v[u..];
        total = total
            .checked_add(int.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?
            + frac * unit / scale;
        if total > 1 << 63 {
            return Err(bad());
        }
    }
    if neg {
        Ok((total as i128).wrapping_neg() as i64)
    } else if total > i64::MAX as u128 {
        Err(bad())
    } else {
        Ok(total as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let t = GoTime::unix(1_560_458_379);
        assert_eq!(t.format("02 Jan 06 15:04 -0700"), "13 Jun 19 20:39 +0000");
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00"),
            "2019-06-13T20:39:39Z"
        );
        assert_eq!(
            t.format("Monday, January 2 3:04PM MST"),
            "Thursday, June 13 8:39PM UTC"
        );
        assert_eq!(
            t.format("2006-01-02 15:04:05.000"),
            "2019-06-13 20:39:39.000"
        );
        let p = parse("02 Jan 06 15:04:05 MST", "13 Jun 19 20:39:39 GMT").unwrap();
        assert_eq!(p.secs, 1_560_458_379);
        let p = parse("2006-01-02", "2017-12-31").unwrap();
        assert_eq!(p.format("02/01/2006"), "31/12/2017");
        assert!(parse("2006-01-02", "x").is_err());
        assert_eq!(GoTime::zero().format("2006-01-02"), "0001-01-01");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(61_000_000_000), "1m1s");
        assert_eq!(fmt_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(fmt_duration(93_784_000_000_000), "26h3m4s");
        assert_eq!(fmt_duration(1_500_000), "1.5ms");
        assert_eq!(fmt_duration(-5_000_000_000), "-5s");
        assert_eq!(parse_duration("2h5s"), Ok(7_205_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert!(parse_duration("5").is_err());
        assert_eq!(
            duration_round(parse_duration("2400h5s").unwrap_or(0)),
            "3mo"
        );
        assert_eq!(duration_round(parse_duration("24h5s").unwrap_or(0)), "1d");
    }
}
