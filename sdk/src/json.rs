//! A small JSON reader and writer: what a plugin needs for its config, its kv values,
//! event properties and message data, in a few kilobytes of WebAssembly.
//!
//! `serde_json` with `serde` derives works too ([`config`](crate::config),
//! [`kv::get_json`](crate::kv::get_json)), but adds 40–80 KB to a plugin component:
//! the first-party plugins read and write JSON with this module instead.
//!
//! ```
//! use patron_sdk::json::{self, Fields, FromJson, Value};
//!
//! struct Config {
//!     threshold: u32,
//!     segment: String,
//! }
//!
//! impl FromJson for Config {
//!     fn from_json(value: &Value) -> Result<Self, json::Error> {
//!         let mut f = Fields::new(value)?;
//!         let config = Config { threshold: f.or("threshold", 3)?, segment: f.or("segment", "vip".into())? };
//!         f.finish()?; // unknown keys are an error
//!         Ok(config)
//!     }
//! }
//!
//! let config: Config = json::from_str(r#"{"threshold": 5}"#).expect("valid");
//! assert_eq!((config.threshold, config.segment.as_str()), (5, "vip"));
//! assert!(json::from_str::<Config>(r#"{"treshold": 5}"#).is_err());
//! ```
//!
//! Numbers keep their text: an integer that fits an `i64` is read exactly, any other
//! number is kept as written (and written back as it came) and read as an `f64` on
//! demand, so a value passes through a plugin unchanged. Objects keep their keys in
//! the order they were written or inserted; a key given twice keeps its last value.
//! Input nested deeper than [`MAX_DEPTH`] is refused, and malformed input is an
//! [`Error`], never a panic.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

mod float;

pub use float::parse_f64;

/// The deepest nesting of arrays and objects [`parse`] accepts.
pub const MAX_DEPTH: usize = 128;

/// A JSON value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

/// A JSON number: an integer that fits an `i64`, or any other number as written.
#[derive(Clone, Debug)]
pub struct Number(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Int(i64),
    /// Valid JSON number text with a fraction or an exponent, or an integer beyond `i64`.
    Text(Box<str>),
}

impl Number {
    /// The number as an `i64`, if it is an integer written without fraction or
    /// exponent that fits one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(i) => Some(i),
            Repr::Text(_) => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer written without
    /// fraction or exponent that fits one.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Int(i) => u64::try_from(*i).ok(),
            Repr::Text(text) => text.parse().ok(),
        }
    }

    /// The number as an `f64` (the nearest one), if it is finite as one.
    pub fn as_f64(&self) -> Option<f64> {
        match &self.0 {
            Repr::Int(i) => Some(*i as f64),
            Repr::Text(text) => parse_f64(text),
        }
    }

    /// `f` as a number; `None` for NaN and the infinities, which JSON cannot write.
    pub fn from_f64(f: f64) -> Option<Self> {
        // `{:?}` is the shortest text that reads back as the same `f64`, with an
        // exponent for very large and very small magnitudes: valid JSON number text.
        f.is_finite().then(|| Self(Repr::Text(format!("{f:?}").into_boxed_str())))
    }
}

impl PartialEq for Number {
    /// Numerically: `1`, `1.0` and `1e0` are equal.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Int(a), Repr::Int(b)) => a == b,
            (Repr::Text(a), Repr::Text(b)) if a == b => true,
            _ => self.as_f64().is_some_and(|a| Some(a) == other.as_f64()),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Self(Repr::Int(i))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Self(Repr::Int(i)),
            Err(_) => Self(Repr::Text(u.to_string().into_boxed_str())),
        }
    }
}

/// A JSON object: keys in the order they were read or first inserted. A key read
/// twice (`{"a": 1, "a": 2}`) has the later value, as with most JSON readers; both
/// entries stay, so [`len`](Self::len) and [`iter`](Self::iter) see them.
#[derive(Clone, Debug, Default)]
pub struct Map(Vec<(String, Value)>);

impl Map {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Position of the entry that holds `key`'s value (the last one of that key).
    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().rposition(|(k, _)| k == key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.0[i].1)
    }

    /// The value of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(|i| &mut self.0[i].1)
    }

    /// Whether the object has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value` (in place if it is there already), returning the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// The value of `key`, inserting `make()` first if there is none.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Value) -> &mut Value {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.0.push((key.to_owned(), make()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.position(key).map(|i| self.0.remove(i).1);
        self.0.retain(|(k, _)| k != key);
        value
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl PartialEq for Map {
    /// The same keys with equal values, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.iter().all(|(k, _)| self.get(k) == other.get(k)) && other.iter().all(|(k, _)| self.contains_key(k))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = Self::new();
        for (k, v) in pairs {
            map.insert(k, v);
        }
        map
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// `null`, what indexing a value by a key or position it does not have gives.
static NULL: Value = Value::Null;

impl Value {
    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Self::Number(n) => Some(n),
            _ => None,
        }
    }

    /// See [`Number::as_i64`].
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    /// See [`Number::as_u64`].
    pub fn as_u64(&self) -> Option<u64> {
        self.as_number()?.as_u64()
    }

    /// See [`Number::as_f64`].
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number()?.as_f64()
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The items, to change them, if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Self::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The object, to change it, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Self::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Compact JSON text (no spaces).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        write_value(self, &mut out);
        out
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;

    /// The value of `key`, or `null` if this is not an object or has no such key.
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Value {
    type Output = Value;

    /// Item `i`, or `null` if this is not an array or is shorter.
    fn index(&self, i: usize) -> &Value {
        self.as_array().and_then(|a| a.get(i)).unwrap_or(&NULL)
    }
}

impl fmt::Display for Value {
    /// Compact JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Number(i.into())
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        Self::Number(u.into())
    }
}

macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Self {
                Self::Number(i64::from(i).into())
            }
        }
    )*};
}
from_small_int!(i8, i16, i32, u8, u16, u32);

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Self::Array(items)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Self {
        Self::Object(map)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `null`.
    fn from(o: Option<T>) -> Self {
        o.map_or(Self::Null, Into::into)
    }
}

/// Why JSON could not be read: where (a byte offset, or the path of the value) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Dotted path of the value (`tiers[1].threshold`), empty for the whole document.
    path: String,
    message: Cow<'static, str>,
    /// Byte offset of a syntax error.
    at: Option<usize>,
}

impl Error {
    /// An error about the value being read.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self { path: String::new(), message: message.into(), at: None }
    }

    /// The same error, about the value under `key` of an object (or `[i]` of an array).
    #[cold]
    #[must_use]
    pub fn within(mut self, key: &str) -> Self {
        if !self.path.is_empty() && !self.path.starts_with('[') {
            self.path.insert(0, '.');
        }
        self.path.insert_str(0, key);
        self
    }

    /// The same error, about item `i` of an array.
    #[cold]
    #[must_use]
    pub fn at_index(self, i: usize) -> Self {
        self.within(&format!("[{i}]"))
    }

    #[cold]
    fn syntax(at: usize, what: &'static str) -> Self {
        Self { path: String::new(), message: Cow::Borrowed(what), at: Some(at) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        if let Some(at) = self.at {
            write!(f, "invalid JSON at byte {at}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for crate::Error {
    /// A `bad-json` error.
    fn from(e: Error) -> Self {
        crate::Error::new("bad-json", e.to_string())
    }
}

/// Reads one JSON document (surrounding white space allowed).
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut p = Parser { text, bytes: text.as_bytes(), pos: 0, depth: 0 };
    p.space();
    let value = p.value()?;
    p.space();
    if p.pos < p.bytes.len() {
        return Err(Error::syntax(p.pos, "trailing characters"));
    }
    Ok(value)
}

/// Reads one JSON document from bytes, which must be UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::syntax(e.valid_up_to(), "not UTF-8"))?;
    parse(text)
}

/// Reads a `T` from JSON text.
pub fn from_str<T: FromJson>(text: &str) -> Result<T, Error> {
    T::from_json(&parse(text)?)
}

/// Reads a `T` from JSON bytes.
pub fn from_slice<T: FromJson>(bytes: &[u8]) -> Result<T, Error> {
    T::from_json(&parse_bytes(bytes)?)
}

/// An object of `pairs`, in their order: `json::object([("id", id.to_json()), ("n", 3.into())])`.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().collect())
}

/// `value` as compact JSON text.
pub fn to_string<T: ToJson + ?Sized>(value: &T) -> String {
    value.to_json().to_json()
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    /// The text between two positions, which are always at ASCII bytes (`get`, not
    /// indexing: no panic path in the component).
    fn slice(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or_default()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Error> {
        if self.peek() != Some(byte) {
            return Err(Error::syntax(self.pos, what));
        }
        self.pos += 1;
        Ok(())
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Error> {
        if !self.bytes[self.pos..].starts_with(word.as_bytes()) {
            return Err(Error::syntax(self.pos, "expected a value"));
        }
        self.pos += word.len();
        Ok(value)
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(Error::syntax(self.pos, "expected a value")),
            None => Err(Error::syntax(self.pos, "unexpected end")),
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Result<Value, Error>) -> Result<Value, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::syntax(self.pos, "nested too deeply"));
        }
        self.depth += 1;
        self.pos += 1;
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// After `[`.
    fn array(&mut self) -> Result<Value, Error> {
        let mut items = Vec::new();
        self.space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.space();
            items.push(self.value()?);
            self.space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(Error::syntax(self.pos, "expected `,` or `]`")),
            }
        }
    }

    /// After `{`.
    fn object(&mut self) -> Result<Value, Error> {
        let mut map = Map::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(Error::syntax(self.pos, "expected a key"));
            }
            let key = self.string()?;
            self.space();
            self.expect(b':', "expected `:`")?;
            self.space();
            let value = self.value()?;
            // No look-up for an earlier entry of the key: `get` finds the last one.
            map.0.push((key, value));
            self.space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(Error::syntax(self.pos, "expected `,` or `}`")),
            }
        }
    }

    /// At `"`.
    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1;
        let start = self.pos;
        // The common case: no escape, one copy.
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(self.slice(start, self.pos - 1).to_owned());
                }
                b'\\' => break,
                0..=0x1f => return Err(Error::syntax(self.pos, "control character in a string")),
                _ => self.pos += 1,
            }
        }
        let mut out = self.slice(start, self.pos).to_owned();
        loop {
            let run = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.slice(run, self.pos));
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(Error::syntax(self.pos, "control character in a string")),
                None => return Err(Error::syntax(self.pos, "unterminated string")),
            }
        }
    }

    /// After `\`.
    fn escape(&mut self) -> Result<char, Error> {
        let at = self.pos;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let high = self.hex4()?;
                let code = match high {
                    0xd800..=0xdbff => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(Error::syntax(at, "lone surrogate in a \\u escape"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(Error::syntax(at, "lone surrogate in a \\u escape"));
                        }
                        0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(Error::syntax(at, "lone surrogate in a \\u escape")),
                    code => code,
                };
                return char::from_u32(code).ok_or_else(|| Error::syntax(at, "bad \\u escape"));
            }
            _ => return Err(Error::syntax(at, "bad escape")),
        };
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self.peek().and_then(|b| (b as char).to_digit(16));
            let Some(digit) = digit else { return Err(Error::syntax(self.pos, "bad \\u escape")) };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.digits() {
            0 => return Err(Error::syntax(self.pos, "expected a digit")),
            n if n > 1 && self.bytes[int_start] == b'0' => return Err(Error::syntax(int_start, "leading zero")),
            _ => {}
        }
        let int_end = self.pos;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Error::syntax(self.pos, "expected a digit"));
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Error::syntax(self.pos, "expected a digit"));
            }
            integer = false;
        }
        if integer {
            // Accumulate negatively, so that `i64::MIN` fits.
            let mut n: i64 = 0;
            let fits = self.bytes[int_start..int_end]
                .iter()
                .try_for_each(|&d| {
                    n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
                    Some(())
                })
                .is_some();
            if fits && (negative || n != i64::MIN) {
                return Ok(Value::Number(Number(Repr::Int(if negative { n } else { -n }))));
            }
        }
        Ok(Value::Number(Number(Repr::Text(self.slice(start, self.pos).into()))))
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(Number(Repr::Int(i))) => write_int(*i, out),
        Value::Number(Number(Repr::Text(text))) => out.push_str(text),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
    }
}

fn write_int(i: i64, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push('-');
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `get`: `run` and `i` are at ASCII bytes; no panic path in the component.
        out.push_str(s.get(run..i).unwrap_or_default());
        run = i + 1;
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escaped);
        }
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// A type read from a JSON value.
pub trait FromJson: Sized {
    /// Reads `value`, or says what is wrong with it.
    fn from_json(value: &Value) -> Result<Self, Error>;
}

/// A type written as a JSON value.
pub trait ToJson {
    /// This as a JSON value.
    fn to_json(&self) -> Value;
}

impl FromJson for Value {
    fn from_json(value: &Value) -> Result<Self, Error> {
        Ok(value.clone())
    }
}

impl ToJson for Value {
    fn to_json(&self) -> Value {
        self.clone()
    }
}

impl FromJson for bool {
    fn from_json(value: &Value) -> Result<Self, Error> {
        value.as_bool().ok_or_else(|| Error::new("expected true or false"))
    }
}

impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}

impl FromJson for String {
    fn from_json(value: &Value) -> Result<Self, Error> {
        value.as_str().map(str::to_owned).ok_or_else(|| Error::new("expected a string"))
    }
}

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_owned())
    }
}

impl FromJson for f64 {
    fn from_json(value: &Value) -> Result<Self, Error> {
        value.as_f64().ok_or_else(|| Error::new("expected a number"))
    }
}

impl ToJson for f64 {
    /// `null` for NaN and the infinities.
    fn to_json(&self) -> Value {
        Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
}

/// An integer of type `T`, from a JSON integer.
fn integer<T: TryFrom<i64>>(value: &Value) -> Result<T, Error> {
    let Some(i) = value.as_i64() else { return Err(Error::new("expected an integer")) };
    T::try_from(i).map_err(|_| Error::new("integer out of range"))
}

macro_rules! json_int {
    ($($t:ty),*) => {$(
        impl FromJson for $t {
            fn from_json(value: &Value) -> Result<Self, Error> {
                integer(value)
            }
        }

        impl ToJson for $t {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
json_int!(i8, i16, i32, i64, u8, u16, u32);

impl FromJson for u64 {
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value.as_number() {
            Some(n) => n.as_u64().ok_or_else(|| Error::new("expected a non-negative integer")),
            None => Err(Error::new("expected an integer")),
        }
    }
}

impl ToJson for u64 {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}

impl FromJson for usize {
    fn from_json(value: &Value) -> Result<Self, Error> {
        usize::try_from(u64::from_json(value)?).map_err(|_| Error::new("integer out of range"))
    }
}

impl ToJson for usize {
    fn to_json(&self) -> Value {
        Value::from(*self as u64)
    }
}

impl<T: FromJson> FromJson for Option<T> {
    /// `null` is `None`.
    fn from_json(value: &Value) -> Result<Self, Error> {
        if value.is_null() { Ok(None) } else { T::from_json(value).map(Some) }
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_json)
    }
}

/// The items of an array, each read with `read`; errors name the item's position.
pub fn array_of<T>(value: &Value, mut read: impl FnMut(&Value) -> Result<T, Error>) -> Result<Vec<T>, Error> {
    let Some(items) = value.as_array() else { return Err(Error::new("expected an array")) };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(read(item).map_err(|e| e.at_index(i))?);
    }
    Ok(out)
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        array_of(value, T::from_json)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(T::to_json).collect())
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

impl<T: FromJson, const N: usize> FromJson for [T; N] {
    /// An array of exactly `N` items.
    fn from_json(value: &Value) -> Result<Self, Error> {
        Vec::<T>::from_json(value)?.try_into().map_err(|_| wrong_length(N))
    }
}

#[cold]
fn wrong_length(n: usize) -> Error {
    Error::new(format!("expected an array of {n} items"))
}

impl<T: ToJson, const N: usize> ToJson for [T; N] {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}

impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    /// A two-item array.
    fn from_json(value: &Value) -> Result<Self, Error> {
        match value.as_array().map(Vec::as_slice) {
            Some([a, b]) => {
                Ok((A::from_json(a).map_err(|e| e.at_index(0))?, B::from_json(b).map_err(|e| e.at_index(1))?))
            }
            _ => Err(Error::new("expected an array of 2 items")),
        }
    }
}

impl<A: ToJson, B: ToJson> ToJson for (A, B) {
    fn to_json(&self) -> Value {
        Value::Array(vec![self.0.to_json(), self.1.to_json()])
    }
}

/// The entries of an object, each value read with `read`; errors name the key.
pub fn entries_of<T>(value: &Value, mut read: impl FnMut(&str, &Value) -> Result<T, Error>) -> Result<Vec<T>, Error> {
    let Some(map) = value.as_object() else { return Err(Error::new("expected an object")) };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map.iter() {
        out.push(read(k, v).map_err(|e| e.within(k))?);
    }
    Ok(out)
}

impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(value: &Value) -> Result<Self, Error> {
        let mut map = BTreeMap::new();
        // One insert at a time: `collect` would bring a sort into the component.
        entries_of(value, |k, v| {
            map.insert(k.to_owned(), T::from_json(v)?);
            Ok(())
        })?;
        Ok(map)
    }
}

impl<T: ToJson> ToJson for BTreeMap<String, T> {
    fn to_json(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.as_str(), v.to_json())).collect())
    }
}

/// The fields of a JSON object as a struct reads them: each by name, then
/// [`finish`](Self::finish) refuses any key that was not asked for. Errors name the field.
pub struct Fields<'a> {
    map: &'a Map,
    asked: Vec<bool>,
}

impl<'a> Fields<'a> {
    /// The fields of `value`, which must be an object.
    pub fn new(value: &'a Value) -> Result<Self, Error> {
        let map = value.as_object().ok_or_else(|| Error::new("expected an object"))?;
        Ok(Self { map, asked: vec![false; map.len()] })
    }

    /// The raw value of `key`, if present and not `null`.
    pub fn value(&mut self, key: &str) -> Option<&'a Value> {
        let i = self.map.position(key)?;
        self.asked[i] = true;
        Some(&self.map.0[i].1).filter(|v| !v.is_null())
    }

    /// `key` read with `read`, if present and not `null`.
    pub fn with<T>(&mut self, key: &str, read: impl FnOnce(&Value) -> Result<T, Error>) -> Result<Option<T>, Error> {
        let Some(value) = self.value(key) else { return Ok(None) };
        match read(value) {
            Ok(t) => Ok(Some(t)),
            Err(e) => Err(e.within(key)),
        }
    }

    /// `key`, if present and not `null`.
    pub fn optional<T: FromJson>(&mut self, key: &str) -> Result<Option<T>, Error> {
        self.with(key, T::from_json)
    }

    /// `key`, or `default` if absent or `null`.
    pub fn or<T: FromJson>(&mut self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.optional(key)?.unwrap_or(default))
    }

    /// `key`, which must be present (and not `null`).
    pub fn required<T: FromJson>(&mut self, key: &str) -> Result<T, Error> {
        match self.optional(key)? {
            Some(t) => Ok(t),
            None => Err(Error::new("missing").within(key)),
        }
    }

    /// Every key was asked for, or the first that was not.
    pub fn finish(self) -> Result<(), Error> {
        let entries = &self.map.0;
        // An entry not asked for is fine if it is an earlier one of a key asked for.
        let unknown = (0..entries.len())
            .find(|&i| !self.asked[i] && self.map.position(&entries[i].0).is_none_or(|j| !self.asked[j]));
        match unknown {
            Some(i) => Err(Error::new("unknown field").within(&entries[i].0)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
