//! The values templates see: Go's `interface{}` as Helm hands it to
//! `text/template` (`map[string]interface{}` of YAML values, Helm's structs),
//! with Go's truthiness, `fmt` printing and type names.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::FuncError;
use crate::gofmt::format_g64;

/// How deep printing and conversions descend before giving up (a map can be
/// made to contain itself with sprig's `set`; Go would recurse forever).
pub const MAX_VALUE_DEPTH: usize = 1000;

/// A Go value as a template sees it.
///
/// Containers are shared, as Go's are: a [`Map`] is a reference to one map
/// (sprig's `set` on a dict changes it for everyone holding it, which charts
/// rely on); a list is an immutable shared slice. Cloning a `Value` is cheap
/// apart from `String`.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil `interface{}` (YAML `null`, a function returning nil).
    #[default]
    Nil,
    Bool(bool),
    /// Go's `int`/`int64` (and the other signed integer types).
    Int(i64),
    /// Go's unsigned integer types (rare in templates).
    Uint(u64),
    /// Go's `float64`: every YAML number in Helm's values.
    Float(f64),
    String(String),
    /// Go's `[]byte` (`.Files.GetBytes`).
    Bytes(Arc<[u8]>),
    /// Go's `[]interface{}`.
    List(List),
    /// Go's `map[string]interface{}`.
    Map(Map),
    /// One of Helm's structs (`.Release`, `.Capabilities`, `.Files`, ...).
    Object(Arc<dyn Object>),
}

/// A Go struct (or a named type with methods) visible to templates.
#[allow(clippy::len_without_is_empty)]
pub trait Object: Send + Sync {
    /// Go's `%T` of the value (`*chart.Metadata`, `chartutil.Files`).
    fn type_name(&self) -> &str;
    /// The field or map key `name` (`.Release.Name`); `None` when the type
    /// has no such field (Go: `can't evaluate field X in type T`).
    fn field(&self, name: &str) -> Option<Value>;
    /// Calls method `name`; `None` when there is no such method (declare
    /// each method in [`Object::has_method`] too: Go looks methods up before
    /// fields). A [`FuncError::Failed`] is the Go error the method returned
    /// (printed `error calling Has: ...`); Go's argument checks are
    /// [`FuncError::arity`] and [`FuncError::arg_type`].
    fn call(&self, _method: &str, _args: &[Value]) -> Option<Result<Value, FuncError>> {
        None
    }
    /// Whether `name` is a method (Go looks methods up before fields).
    fn has_method(&self, _name: &str) -> bool {
        false
    }
    /// What Go's `fmt` prints for it with `%v` (a `String()` method, or the
    /// struct printed as `{a b}`).
    fn display(&self) -> String {
        match self.to_value() {
            Some(v) => v.to_string(),
            None => format!("{{{}}}", self.type_name()),
        }
    }
    /// The value as plain data, as `encoding/json` would see it (for
    /// `toYaml`, `toJson`); `None` if it has no such form.
    fn to_value(&self) -> Option<Value> {
        None
    }
    /// The entries `range` visits (index or key, element), in Go's order,
    /// for an object that is a map or slice type (Helm's `Files`); `None`
    /// if it cannot be ranged over.
    fn range_entries(&self) -> Option<Vec<(Value, Value)>> {
        None
    }
    /// Go's `len` of it, for a map or slice type; `None` otherwise. Also
    /// its truth: an object with a length is true when not empty.
    fn len(&self) -> Option<usize> {
        None
    }
    /// Go's `reflect.Kind` of its type, as `kindOf` prints it: `struct` unless the type is
    /// a named slice or map (Helm's `VersionSet` is a `[]string`), which sprig's list
    /// functions read through reflection like any slice.
    fn kind(&self) -> &str {
        "struct"
    }
    /// For downcasting by functions that know the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// A shared, immutable `[]interface{}` (Go's slices are not changed in
/// place by templates). Derefs to the `Vec`.
#[derive(Clone, Default)]
pub struct List(Arc<Vec<Value>>);

impl List {
    pub fn new(v: Vec<Value>) -> Self {
        List(Arc::new(v))
    }
    /// Whether both refer to the same slice.
    pub fn ptr_eq(&self, other: &List) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for List {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.0
    }
}

impl From<Vec<Value>> for List {
    fn from(v: Vec<Value>) -> Self {
        List(Arc::new(v))
    }
}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "List({})", Value::List(self.clone()).go_string())
    }
}

/// Values nested a million deep (a template can build them, `list` in a
/// loop) would overflow the stack when dropped recursively: the last owner
/// of a list or map takes its contents apart with a heap stack instead.
fn drop_iteratively(mut stack: Vec<Value>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::List(mut l) => {
                if let Some(inner) = Arc::get_mut(&mut l.0) {
                    stack.append(inner);
                }
            }
            Value::Map(m) if Arc::strong_count(&m.0) == 1 => {
                let taken = std::mem::take(&mut *m.write());
                stack.extend(taken.into_values());
            }
            _ => {}
        }
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::List(_) | Value::Map(_))
}

impl Drop for List {
    fn drop(&mut self) {
        if let Some(inner) = Arc::get_mut(&mut self.0)
            && inner.iter().any(is_container)
        {
            drop_iteratively(std::mem::take(inner));
        }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            let mut m = self.write();
            if m.values().any(is_container) {
                let taken = std::mem::take(&mut *m);
                drop(m);
                drop_iteratively(taken.into_values().collect());
            }
        }
    }
}

/// A shared `map[string]interface{}`: clones refer to the same map.
#[derive(Clone, Default)]
pub struct Map(Arc<RwLock<BTreeMap<String, Value>>>);

impl Map {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn from_btree(m: BTreeMap<String, Value>) -> Self {
        Map(Arc::new(RwLock::new(m)))
    }
    /// Read access. Do not call template code while holding it.
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Value>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Write access (sprig's `set`, `unset`, `merge`).
    pub fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Value>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }
    pub fn insert(&self, key: impl Into<String>, v: Value) -> Option<Value> {
        self.write().insert(key.into(), v)
    }
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }
    pub fn len(&self) -> usize {
        self.read().len()
    }
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
    pub fn keys(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }
    /// The entries in key order, copied out (safe to iterate while
    /// template code changes the map).
    pub fn entries(&self) -> Vec<(String, Value)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    /// A new map with the same entries (Go's shallow copy).
    pub fn shallow_copy(&self) -> Map {
        Map::from_btree(self.read().clone())
    }
    /// Whether both refer to the same map.
    pub fn ptr_eq(&self, other: &Map) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<BTreeMap<String, Value>> for Map {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Map::from_btree(m)
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Map({})", Value::Map(self.clone()).go_string())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Uint(i) => write!(f, "Uint({i})"),
            Value::Float(x) => write!(f, "Float({x:?})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::Bytes(b) => write!(f, "Bytes({b:?})"),
            Value::List(_) => write!(f, "List({})", self.go_string()),
            Value::Map(_) => write!(f, "Map({})", self.go_string()),
            Value::Object(o) => write!(f, "Object({})", o.type_name()),
        }
    }
}

/// `%v` of the value, as Go's `fmt` prints it (`fmt.Sprint(v)`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.go_string())
    }
}

impl PartialEq for Value {
    /// Deep equality of data (Go's `reflect.DeepEqual` on these types);
    /// objects are equal only to themselves.
    fn eq(&self, other: &Self) -> bool {
        deep_equal(self, other, 0)
    }
}

fn deep_equal(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| deep_equal(p, q, depth + 1))
        }
        (Value::Map(x), Value::Map(y)) => {
            if x.ptr_eq(y) {
                return true;
            }
            let (x, y) = (x.entries(), y.entries());
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && deep_equal(v1, v2, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(List::from(v))
    }
    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Map::from_btree(m))
    }
    pub fn object(o: impl Object + 'static) -> Value {
        Value::Object(Arc::new(o))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Go's truth (`if`, `with`, `and`, `or`, `not`): false for nil,
    /// false, zero numbers, and empty strings, lists and maps; structs are
    /// true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(i) => *i != 0,
            Value::Float(x) => *x != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.len().is_none_or(|n| n > 0),
        }
    }

    /// Go's `%T` (sprig's `typeOf`): `map[string]interface {}`,
    /// `[]interface {}`, `float64`, `int`, `string`, `bool`, `<nil>`.
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) => "[]uint8",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Object(o) => o.type_name(),
        }
    }

    /// Go's `reflect.Kind` name of the value (sprig's `kindOf`).
    pub fn kind_name(&self) -> &str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) | Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(o) => o.kind(),
        }
    }

    /// `fmt.Sprint(v)`: Go's `%v`.
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        write_go(&mut out, self, 0);
        out
    }

    /// The value as JSON data (objects through [`Object::to_value`], bytes
    /// as base64 as `encoding/json` writes `[]byte`; NaN and infinities,
    /// which JSON cannot hold, become null).
    pub fn to_json(&self) -> serde_json::Value {
        to_json(self, 0)
    }

    /// JSON data as Helm reads it: numbers become `float64`, except that
    /// integers read by `encoding/json` into `interface{}` are float64 too.
    pub fn from_json(v: &serde_json::Value) -> Value {
        from_json(v, 0)
    }
}

fn write_go(out: &mut String, v: &Value, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(i) => out.push_str(&i.to_string()),
        Value::Float(x) => out.push_str(&format_g64(*x)),
        Value::String(s) => out.push_str(s),
        Value::Bytes(b) => {
            out.push('[');
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&x.to_string());
            }
            out.push(']');
        }
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, x)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_go(out, x, depth + 1);
            }
            out.push(']');
        }
        Value::Object(o) => out.push_str(&o.display()),
    }
}

fn to_json(v: &Value, depth: usize) -> serde_json::Value {
    use serde_json::Value as J;
    if depth > MAX_VALUE_DEPTH {
        return J::Null;
    }
    match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(i) => J::from(*i),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64(b)),
        Value::List(l) => J::Array(l.iter().map(|x| to_json(x, depth + 1)).collect()),
        Value::Map(m) => J::Object(
            m.entries()
                .into_iter()
                .map(|(k, x)| (k, to_json(&x, depth + 1)))
                .collect(),
        ),
        Value::Object(o) => match o.to_value() {
            Some(v) => to_json(&v, depth + 1),
            None => J::Object(serde_json::Map::new()),
        },
    }
}

fn from_json(v: &serde_json::Value, depth: usize) -> Value {
    use serde_json::Value as J;
    if depth > MAX_VALUE_DEPTH {
        return Value::Nil;
    }
    match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::String(s.clone()),
        J::Array(a) => Value::list(a.iter().map(|x| from_json(x, depth + 1)).collect()),
        J::Object(o) => Value::map(
            o.iter()
                .map(|(k, x)| (k.clone(), from_json(x, depth + 1)))
                .collect(),
        ),
    }
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        Value::from_json(v)
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::from_json(&v)
    }
}
impl From<&Value> for serde_json::Value {
    fn from(v: &Value) -> Self {
        v.to_json()
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::list(v)
    }
}
impl From<List> for Value {
    fn from(l: List) -> Self {
        Value::List(l)
    }
}
impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Value::map(m)
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_printing() {
        let v =
            Value::from(serde_json::json!({"b": [1, "x", null], "a": 1000000, "c": {"d": 1.5}}));
        assert_eq!(v.go_string(), "map[a:1e+06 b:[1 x <nil>] c:map[d:1.5]]");
        assert_eq!(Value::Float(3.0).go_string(), "3");
        assert_eq!(Value::Bytes(Arc::from(&b"hi"[..])).go_string(), "[104 105]");
        assert_eq!(v.type_name(), "map[string]interface {}");
        assert_eq!(Value::Bytes(Arc::from(&b"hello"[..])).to_json(), "aGVsbG8=");
    }
}
