//! Helm's `--set` syntax (`pkg/strvals`): `a.b=c,list[0]=x,l={a,b}`, `\`
//! escapes, values typed as Helm types them (`true`/`false`/`null` in any
//! case, integers without a leading zero as int64, everything else a
//! string), or all strings for `--set-string`, or file contents for
//! `--set-file`, or JSON for `--set-json`; and `--set-literal`'s own parser
//! (the rest of the text after `=` is the value, as is).

use sluice_kustomize::yaml::{Map as YMap, Value as Y};

const MAX_INDEX: usize = 65536;
const MAX_NESTED: usize = 30;

/// How a value's text becomes a value.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `--set`.
    Typed,
    /// `--set-string`.
    String,
    /// `--set-file`: the text names a file whose contents are the value.
    File,
    /// `--set-json` in its `key=JSON` form: each value is one JSON value
    /// (numbers are `float64`), followed by blanks and a comma.
    Json,
}

/// Parses `s` into `dest` (Helm's `ParseInto`, `ParseIntoString`,
/// `ParseIntoFile`).
pub fn parse_into(s: &str, dest: &mut YMap, kind: Kind) -> Result<(), String> {
    let mut p = Parser {
        chars: s.chars().collect(),
        pos: 0,
        kind,
    };
    until_eof(|| p.key(dest, 0))
}

/// Both parsers read key after key until the text ends (Helm's `parse`).
fn until_eof(mut key: impl FnMut() -> Result<(), Stop>) -> Result<(), String> {
    loop {
        match key() {
            Ok(()) => continue,
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Err(e)) => return Err(e),
        }
    }
}

enum Stop {
    Eof,
    Err(String),
}

fn err<T>(m: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Err(m.into()))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    kind: Kind,
}

impl Parser {
    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Runes up to one of `stop` (consumed), `\` escaping; `None` as the
    /// stop at the end of input.
    fn until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let mut v = String::new();
        loop {
            match self.read() {
                None => return (v, None),
                Some(c) if stop.contains(&c) => return (v, Some(c)),
                Some('\\') => match self.read() {
                    None => return (v, None),
                    Some(n) => v.push(n),
                },
                Some(c) => v.push(c),
            }
        }
    }

    fn reader(&self, text: &str) -> Result<Y, Stop> {
        match self.kind {
            Kind::String => Ok(Y::str(text)),
            Kind::Typed => Ok(typed(text)),
            Kind::File => std::fs::read(text)
                .map(|b| Y::str(String::from_utf8_lossy(&b).into_owned()))
                .map_err(|e| Stop::Err(format!("open {text}: {e}"))),
            // Values of this kind never go through the reader.
            Kind::Json => Ok(Y::str(text)),
        }
    }

    /// Helm's `emptyVal`: blanks skipped; true at the end or after a comma
    /// (consumed), false before anything else (not consumed).
    fn empty_val(&mut self) -> bool {
        loop {
            match self.chars.get(self.pos) {
                None => return true,
                Some(',') => {
                    self.pos += 1;
                    return true;
                }
                Some(c) if c.is_whitespace() => self.pos += 1,
                Some(_) => return false,
            }
        }
    }

    /// A `--set-json` value: nothing (nil), or one JSON value as Go's
    /// `json.Decoder` reads it from the rest of the text, then blanks and a
    /// comma.
    fn json_val(&mut self) -> Result<Y, Stop> {
        if self.empty_val() {
            return Ok(Y::Null);
        }
        let rest: String = self.chars[self.pos..].iter().collect();
        let mut stream = serde_json::Deserializer::from_str(&rest).into_iter::<serde_json::Value>();
        let v = match stream.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return err(e.to_string()),
            None => return err("unexpected end of JSON input"),
        };
        let used = rest[..stream.byte_offset()].chars().count();
        self.pos += used;
        self.empty_val();
        Ok(crate::values::from_json(&v))
    }

    fn key(&mut self, data: &mut YMap, level: usize) -> Result<(), Stop> {
        let (k, last) = self.until(&['=', '[', ',', '.']);
        match last {
            None => {
                if k.is_empty() {
                    Err(Stop::Eof)
                } else {
                    err(format!("key {k:?} has no value"))
                }
            }
            Some('[') => {
                let i = self.index()?;
                let list = match data.get(&k) {
                    None => Vec::new(),
                    Some(Y::Seq(l)) => l.clone(),
                    Some(_) => return err(format!("unable to parse key: {k:?} is not a list")),
                };
                let list = self.list_item(list, i, level)?;
                set(data, &k, Y::Seq(list));
                Ok(())
            }
            Some('=') if matches!(self.kind, Kind::Json) => {
                let v = self.json_val()?;
                set(data, &k, v);
                Ok(())
            }
            Some('=') => match self.val_list()? {
                Some(list) => {
                    set(data, &k, Y::Seq(list));
                    Ok(())
                }
                None if self.pos >= self.chars.len() => {
                    set(data, &k, Y::str(""));
                    Err(Stop::Eof)
                }
                None => {
                    let (text, _) = self.until(&[',']);
                    let v = self.reader(&text)?;
                    set(data, &k, v);
                    Ok(())
                }
            },
            Some(',') => {
                set(data, &k, Y::str(""));
                err(format!("key {k:?} has no value (cannot end with ,)"))
            }
            Some(_) => {
                let level = level + 1;
                if level > MAX_NESTED {
                    return err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED}"
                    ));
                }
                let mut inner = match data.get(&k) {
                    None => YMap::new(),
                    Some(Y::Map(m)) => m.clone(),
                    Some(_) => return err(format!("unable to parse key: {k:?} is not a map")),
                };
                let r = self.key(&mut inner, level);
                if r.is_ok() && inner.is_empty() {
                    return err(format!("key map {k:?} has no value"));
                }
                if !inner.is_empty() {
                    set(data, &k, Y::Map(inner));
                }
                r
            }
        }
    }

    fn index(&mut self) -> Result<usize, Stop> {
        let (v, last) = self.until(&[']']);
        if last.is_none() {
            return Err(Stop::Eof);
        }
        let i: i64 = v.parse().map_err(|_| {
            Stop::Err(format!(
                "error parsing index: strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        })?;
        if i < 0 {
            return err(format!("negative {i} index not allowed"));
        }
        Ok(i as usize)
    }

    fn list_item(&mut self, mut list: Vec<Y>, i: usize, level: usize) -> Result<Vec<Y>, Stop> {
        let (k, last) = self.until(&['[', '.', '=']);
        if !k.is_empty() {
            return err(format!("unexpected data at end of array index: {k:?}"));
        }
        match last {
            None => Err(Stop::Eof),
            Some('=') if matches!(self.kind, Kind::Json) => {
                let v = self.json_val()?;
                set_index(&mut list, i, v)?;
                Ok(list)
            }
            Some('=') => {
                let v = match self.val_list()? {
                    Some(l) => Y::Seq(l),
                    None if self.pos >= self.chars.len() => Y::str(""),
                    None => {
                        let (text, _) = self.until(&[',']);
                        self.reader(&text)?
                    }
                };
                set_index(&mut list, i, v)?;
                Ok(list)
            }
            Some('[') => {
                let next = self.index()?;
                let current = match list.get(i) {
                    Some(Y::Seq(l)) => l.clone(),
                    _ => Vec::new(),
                };
                let inner = self.list_item(current, next, level)?;
                set_index(&mut list, i, Y::Seq(inner))?;
                Ok(list)
            }
            Some(_) => {
                let mut inner = match list.get(i) {
                    Some(Y::Map(m)) => m.clone(),
                    _ => YMap::new(),
                };
                self.key(&mut inner, level)?;
                set_index(&mut list, i, Y::Map(inner))?;
                Ok(list)
            }
        }
    }

    /// `{a,b}`: `Some(list)`; `None` when the value is not a list.
    fn val_list(&mut self) -> Result<Option<Vec<Y>>, Stop> {
        match self.chars.get(self.pos) {
            Some('{') => self.pos += 1,
            _ => return Ok(None),
        }
        let mut list = Vec::new();
        loop {
            let (text, last) = self.until(&[',', '}']);
            match last {
                None => return err("list must terminate with '}'"),
                Some('}') => {
                    if self.chars.get(self.pos) == Some(&',') {
                        self.pos += 1;
                    }
                    list.push(self.reader(&text)?);
                    return Ok(Some(list));
                }
                Some(_) => list.push(self.reader(&text)?),
            }
        }
    }
}

/// The values flags of `helm template`/`install`, as given.
#[derive(Clone, Debug, Default)]
pub struct ValueFlags {
    /// `-f`: (name shown in errors, contents), in order.
    pub files: Vec<(String, Vec<u8>)>,
    pub json: Vec<String>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub set_file: Vec<String>,
    pub literal: Vec<String>,
}

/// Helm's `values.Options.MergeValues`: values files merged in order, then
/// `--set-json`, `--set`, `--set-string`, `--set-file` and `--set-literal`,
/// each kind in the order given; errors worded as Helm's.
pub fn merge_flags(f: &ValueFlags) -> Result<YMap, String> {
    let mut values = YMap::new();
    for (name, data) in &f.files {
        let current =
            crate::values::load_values(data).map_err(|e| format!("failed to parse {name}: {e}"))?;
        values = crate::values::merge_maps(values, current);
    }
    for v in &f.json {
        values = parse_json_flag(v, values)?;
    }
    for (list, kind, flag) in [
        (&f.set, Kind::Typed, "--set"),
        (&f.set_string, Kind::String, "--set-string"),
        (&f.set_file, Kind::File, "--set-file"),
    ] {
        for v in list {
            parse_into(v, &mut values, kind)
                .map_err(|e| format!("failed parsing {flag} data: {e}"))?;
        }
    }
    for v in &f.literal {
        parse_literal_into(v, &mut values)
            .map_err(|e| format!("failed parsing --set-literal data: {e}"))?;
    }
    Ok(values)
}

/// One `--set-json` flag into `values`, as Helm's `MergeValues` takes it: a
/// JSON object merged over the values (`MergeMaps`), or `key=JSON` pairs.
/// The error is Helm's (which does not say what is wrong, only where).
pub fn parse_json_flag(value: &str, values: YMap) -> Result<YMap, String> {
    let trimmed = value.trim();
    if trimmed.starts_with('{') {
        return match serde_json::from_str::<serde_json::Value>(trimmed) {
            Ok(serde_json::Value::Object(m)) => {
                let Y::Map(add) = crate::values::from_json(&serde_json::Value::Object(m)) else {
                    unreachable!("an object converts to a map")
                };
                Ok(crate::values::merge_maps(values, add))
            }
            _ => Err(format!("failed parsing --set-json data JSON: {value}")),
        };
    }
    let mut values = values;
    parse_into(value, &mut values, Kind::Json)
        .map_err(|_| format!("failed parsing --set-json data {value}"))?;
    Ok(values)
}

/// `--set-literal` (Helm's `ParseLiteralInto`): `a.b[0]=VALUE`, the value
/// being everything after the first `=`, commas and backslashes included.
pub fn parse_literal_into(s: &str, dest: &mut YMap) -> Result<(), String> {
    let mut p = Literal {
        chars: s.chars().collect(),
        pos: 0,
    };
    until_eof(|| p.key(dest, 0))
}

struct Literal {
    chars: Vec<char>,
    pos: usize,
}

/// Go's type of a value (a failed type assertion names it).
fn go_type(v: &Y) -> &'static str {
    match v {
        Y::Null => "nil",
        Y::Bool(_) => "bool",
        Y::Int(_) => "int64",
        Y::Float(_) => "float64",
        Y::Str(_) => "string",
        Y::Seq(_) => "[]interface {}",
        Y::Map(_) => "map[string]interface {}",
    }
}

/// What Helm's recovered panic says when a value is not of the type a key
/// needs.
fn not_a(v: &Y, want: &str) -> Stop {
    Stop::Err(format!(
        "unable to parse key: interface conversion: interface {{}} is {}, not {want}",
        go_type(v)
    ))
}

impl Literal {
    /// Runes up to one of `stop` (consumed, no escapes); `None` at the end.
    fn until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let mut v = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            self.pos += 1;
            if stop.contains(&c) {
                return (v, Some(c));
            }
            v.push(c);
        }
        (v, None)
    }

    fn rest(&mut self) -> String {
        let v: String = self.chars[self.pos..].iter().collect();
        self.pos = self.chars.len();
        v
    }

    /// Go's `strconv.Atoi` of an index; the end of the text ends the
    /// parse (Helm wraps io.EOF, which its caller takes as the end).
    fn index(&mut self) -> Result<i64, Stop> {
        let (v, last) = self.until(&[']']);
        if last.is_none() {
            return Err(Stop::Eof);
        }
        let digits = v.strip_prefix(['+', '-']).unwrap_or(&v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return err(format!(
                "error parsing index: strconv.Atoi: parsing {v:?}: invalid syntax"
            ));
        }
        v.parse().map_err(|_| {
            Stop::Err(format!(
                "error parsing index: strconv.Atoi: parsing {v:?}: value out of range"
            ))
        })
    }

    fn key(&mut self, data: &mut YMap, level: usize) -> Result<(), Stop> {
        let (k, last) = self.until(&['=', '[', '.']);
        match last {
            None if k.is_empty() => Err(Stop::Eof),
            None => err(format!("key {k:?} has no value")),
            Some('=') => {
                let v = self.rest();
                set(data, &k, Y::str(v.as_str()));
                Ok(())
            }
            Some('.') => {
                let level = level + 1;
                if level > MAX_NESTED {
                    return err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED}"
                    ));
                }
                let mut inner = match data.get(&k) {
                    None => YMap::new(),
                    Some(Y::Map(m)) => m.clone(),
                    Some(other) => return Err(not_a(other, "map[string]interface {}")),
                };
                let r = self.key(&mut inner, level);
                if r.is_ok() && inner.is_empty() {
                    return err(format!("key map {k:?} has no value"));
                }
                if !inner.is_empty() {
                    set(data, &k, Y::Map(inner));
                }
                r
            }
            Some(_) => {
                let i = self.index()?;
                let list = match data.get(&k) {
                    None => Vec::new(),
                    Some(Y::Seq(l)) => l.clone(),
                    Some(other) => return Err(not_a(other, "[]interface {}")),
                };
                let (list, r) = self.list_item(list, i, level);
                set(data, &k, Y::Seq(list));
                r
            }
        }
    }

    /// The list with item `i` set from what follows `[i]`, and how the
    /// parse goes on (Helm returns the list even with an error).
    fn list_item(&mut self, mut list: Vec<Y>, i: i64, level: usize) -> (Vec<Y>, Result<(), Stop>) {
        if i < 0 {
            return (list, err(format!("negative {i} index not allowed")));
        }
        let i = i as usize;
        let (k, last) = self.until(&['[', '.', '=']);
        if !k.is_empty() {
            return (
                list,
                err(format!("unexpected data at end of array index: {k:?}")),
            );
        }
        match last {
            None => (list, Err(Stop::Eof)),
            Some('=') => {
                let v = self.rest();
                let r = set_index(&mut list, i, Y::str(v.as_str()));
                (list, r)
            }
            Some('.') => {
                let mut inner = match list.get(i) {
                    Some(Y::Map(m)) => m.clone(),
                    _ => YMap::new(),
                };
                if let Err(e) = self.key(&mut inner, level) {
                    return (list, Err(e));
                }
                let r = set_index(&mut list, i, Y::Map(inner));
                (list, r)
            }
            Some(_) => {
                let next = match self.index() {
                    Ok(n) => n,
                    Err(e) => return (list, Err(e)),
                };
                let current = match list.get(i) {
                    None | Some(Y::Null) => Vec::new(),
                    Some(Y::Seq(l)) => l.clone(),
                    Some(other) => {
                        let e = not_a(other, "[]interface {}");
                        return (list, Err(e));
                    }
                };
                let (inner, r) = self.list_item(current, next, level);
                if r.is_err() {
                    return (list, r);
                }
                let r = set_index(&mut list, i, Y::Seq(inner));
                (list, r)
            }
        }
    }
}

fn set(data: &mut YMap, key: &str, v: Y) {
    if !key.is_empty() {
        data.insert(key, v);
    }
}

fn set_index(list: &mut Vec<Y>, i: usize, v: Y) -> Result<(), Stop> {
    if i > MAX_INDEX {
        return err(format!(
            "index of {i} is greater than maximum supported index of {MAX_INDEX}"
        ));
    }
    if list.len() <= i {
        list.resize(i + 1, Y::Null);
    }
    list[i] = v;
    Ok(())
}

/// Helm's `typedVal`.
fn typed(v: &str) -> Y {
    if v.eq_ignore_ascii_case("true") {
        return Y::Bool(true);
    }
    if v.eq_ignore_ascii_case("false") {
        return Y::Bool(false);
    }
    if v.eq_ignore_ascii_case("null") {
        return Y::Null;
    }
    if v == "0" {
        return Y::Int(0);
    }
    if !v.is_empty() && !v.starts_with('0') {
        let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = v.parse::<i64>()
        {
            return Y::Int(i);
        }
    }
    Y::str(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<YMap, String> {
        let mut m = YMap::new();
        parse_into(s, &mut m, Kind::Typed).map(|_| m)
    }

    #[test]
    fn helm_set_syntax() {
        let m = parse("a.b=c,n=10,z=010,t=TRUE,x=null,l={a,1},i[1]=q,e=").unwrap();
        let a = m.get("a").and_then(Y::as_map).unwrap();
        assert_eq!(a.get("b"), Some(&Y::str("c")));
        assert_eq!(m.get("n"), Some(&Y::Int(10)));
        assert_eq!(m.get("z"), Some(&Y::str("010")));
        assert_eq!(m.get("t"), Some(&Y::Bool(true)));
        assert_eq!(m.get("x"), Some(&Y::Null));
        assert_eq!(m.get("l"), Some(&Y::Seq(vec![Y::str("a"), Y::Int(1)])));
        assert_eq!(m.get("i"), Some(&Y::Seq(vec![Y::Null, Y::str("q")])));
        assert_eq!(m.get("e"), Some(&Y::str("")));
        let m = parse(r"name=a\,b,dotted\.key=v").unwrap();
        assert_eq!(m.get("name"), Some(&Y::str("a,b")));
        assert_eq!(m.get("dotted.key"), Some(&Y::str("v")));
    }

    #[test]
    fn set_json_values_are_json() {
        let base = parse("keep=1").unwrap();
        // As Go's decoder, blanks after a value's comma start the next key.
        let m = parse_json_flag(
            r#"a={"x":[1,"two",null]}, b[1]=true,c.d="s,t",e=,f=3"#,
            base.clone(),
        )
        .unwrap();
        assert_eq!(m.get("keep"), Some(&Y::Int(1)));
        let a = m.get("a").and_then(Y::as_map).unwrap();
        assert_eq!(
            a.get("x"),
            Some(&Y::Seq(vec![Y::Float(1.0), Y::str("two"), Y::Null]))
        );
        assert_eq!(m.get(" b"), Some(&Y::Seq(vec![Y::Null, Y::Bool(true)])));
        let c = m.get("c").and_then(Y::as_map).unwrap();
        assert_eq!(c.get("d"), Some(&Y::str("s,t")));
        assert_eq!(m.get("e"), Some(&Y::Null));
        assert_eq!(m.get("f"), Some(&Y::Float(3.0)));
        let m = parse_json_flag(r#" {"keep": {"n": 2}, "z": "y"} "#, base.clone()).unwrap();
        assert_eq!(
            m.get("keep").and_then(Y::as_map).and_then(|k| k.get("n")),
            Some(&Y::Float(2.0))
        );
        assert_eq!(
            parse_json_flag("{bad", base.clone()).unwrap_err(),
            "failed parsing --set-json data JSON: {bad"
        );
        assert_eq!(
            parse_json_flag("a={bad", base).unwrap_err(),
            "failed parsing --set-json data a={bad"
        );
    }

    #[test]
    fn set_literal_takes_the_rest_as_is() {
        let lit = |s: &str| {
            let mut m = parse("n=1,s=x").unwrap();
            parse_literal_into(s, &mut m).map(|_| m)
        };
        let m = lit(r"a.b=x,y=z\,{1,2}").unwrap();
        let a = m.get("a").and_then(Y::as_map).unwrap();
        assert_eq!(a.get("b"), Some(&Y::str(r"x,y=z\,{1,2}")));
        let m = lit("l[1].k=v").unwrap();
        let l = m.get("l").and_then(Y::as_seq).unwrap();
        assert_eq!(l[0], Y::Null);
        assert_eq!(l[1].as_map().and_then(|x| x.get("k")), Some(&Y::str("v")));
        let m = lit("t=10").unwrap();
        assert_eq!(m.get("t"), Some(&Y::str("10")));
        assert_eq!(lit("a").unwrap_err(), "key \"a\" has no value");
        assert_eq!(
            lit("s.x=1").unwrap_err(),
            "unable to parse key: interface conversion: interface {} is string, not map[string]interface {}"
        );
        assert_eq!(
            lit("n[0]=1").unwrap_err(),
            "unable to parse key: interface conversion: interface {} is int64, not []interface {}"
        );
        assert_eq!(
            lit("l[x]=1").unwrap_err(),
            "error parsing index: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert!(lit("l[-1]=1").unwrap_err().contains("negative -1 index"));
        // An index cut off by the end of the text ends the parse (Helm).
        assert!(lit("l[1").is_ok());
    }

    #[test]
    fn errors_as_helm_words_them() {
        assert_eq!(parse("a").unwrap_err(), "key \"a\" has no value");
        assert_eq!(
            parse("a,b=1").unwrap_err(),
            "key \"a\" has no value (cannot end with ,)"
        );
        assert!(parse("a[-1]=1").unwrap_err().contains("negative"));
        assert!(parse("l={a,b").unwrap_err().contains("terminate"));
        let mut m = YMap::new();
        parse_into("s=10", &mut m, Kind::String).unwrap();
        assert_eq!(m.get("s"), Some(&Y::str("10")));
    }
}
