//! Helm's `--set` syntax (`pkg/strvals`): `a.b=c,list[0]=x,l={a,b}`, `\`
//! escapes, values typed as Helm types them (`true`/`false`/`null` in any
//! case, integers without a leading zero as int64, everything else a
//! string), or all strings for `--set-string`, or file contents for
//! `--set-file`.

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
}

/// Parses `s` into `dest` (Helm's `ParseInto`, `ParseIntoString`,
/// `ParseIntoFile`).
pub fn parse_into(s: &str, dest: &mut YMap, kind: Kind) -> Result<(), String> {
    let mut p = Parser {
        chars: s.chars().collect(),
        pos: 0,
        kind,
    };
    loop {
        match p.key(dest, 0) {
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
        }
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
