//! The little JSON the widget needs: string escaping for the bodies it writes, and
//! typed reads from values parsed with the browser's `JSON.parse`.

use crate::prelude::*;
use js_sys::{Array, JSON, Reflect};
use wasm_bindgen::JsValue;

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(hex_digit(c as u32 >> 4));
                out.push(hex_digit(c as u32 & 0xf));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":"value",` — a string member followed by a comma.
pub(crate) fn push_member(out: &mut String, key: &str, value: &str) {
    push_str(out, key);
    out.push(':');
    push_str(out, value);
    out.push(',');
}

fn hex_digit(n: u32) -> char {
    char::from_digit(n, 16).unwrap_or('0')
}

/// Parses JSON text with the browser's parser; `None` if it is not JSON.
pub(crate) fn parse(text: &str) -> Option<JsValue> {
    JSON::parse(text).ok()
}

/// Serializes a JS value with the browser's `JSON.stringify`; `None` for values that
/// have no JSON form (functions, `undefined`, cycles).
pub(crate) fn stringify(value: &JsValue) -> Option<String> {
    JSON::stringify(value).ok().and_then(|s| s.as_string())
}

/// `obj[key]`, or `undefined`.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `obj[key]` if it is a string.
pub(crate) fn string(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// `obj[key]` if it is a number.
pub(crate) fn number(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// `obj[key]` as a list; empty unless it is an array.
pub(crate) fn list(obj: &JsValue, key: &str) -> Vec<JsValue> {
    let value = get(obj, key);
    if Array::is_array(&value) { Array::from(&value).iter().collect() } else { Vec::new() }
}

/// Whether `value` is neither `null` nor `undefined`.
pub(crate) fn present(value: &JsValue) -> bool {
    !value.is_null() && !value.is_undefined()
}
