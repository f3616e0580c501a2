//! Checks an install's configuration against the JSON schema in the plugin's manifest.
//!
//! Supports the subset of JSON Schema plugin configs need: `type` (object, array,
//! string, integer, number, boolean, null), `properties`, `required`,
//! `additionalProperties: false`, `items`, `enum`, `minimum`, `maximum`, `minLength`,
//! `maxLength`. Unknown keywords (`description`, `default`, …) are ignored. Settings
//! for the shop's currency and locale that a config leaves unset are filled from the
//! shop ([`with_shop_defaults`]).

use serde_json::Value;

/// A config value that does not match its schema, naming the failing field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{path}`: {reason}")]
pub struct ConfigMismatch {
    /// Where the value fails, e.g. `tiers[1].threshold` (`$` for the whole config).
    pub path: String,
    pub reason: String,
}

/// Top-level settings the host fills from the shop when a manifest's schema declares
/// them and the install's config leaves them unset: a plugin's money and language then
/// follow the shop's (a `zh-CN` shop in CNY gets CNY rewards) instead of the plugin's
/// built-in fallback.
pub const SHOP_DEFAULTS: [&str; 2] = ["currency", "locale"];

/// The config a plugin is handed: `config` with each of [`SHOP_DEFAULTS`] that `schema`
/// declares, `config` leaves out and the shop's value satisfies, set to the shop's
/// `currency` or `locale`. Anything the merchant set is kept as it is.
pub fn with_shop_defaults(schema: &Value, config: &Value, currency: &str, locale: &str) -> Value {
    let (Some(properties), Value::Object(fields)) = (schema.get("properties").and_then(Value::as_object), config)
    else {
        return config.clone();
    };
    let mut fields = fields.clone();
    for (name, value) in SHOP_DEFAULTS.into_iter().zip([currency, locale]) {
        let value = Value::String(value.to_owned());
        if let Some(property) = properties.get(name)
            && !fields.contains_key(name)
            && check(property, &value, name).is_ok()
        {
            fields.insert(name.to_owned(), value);
        }
    }
    Value::Object(fields)
}

/// Checks `value` against `schema`.
pub fn validate(schema: &Value, value: &Value) -> Result<(), ConfigMismatch> {
    check(schema, value, "$")
}

fn mismatch(path: &str, reason: impl Into<String>) -> ConfigMismatch {
    ConfigMismatch { path: path.trim_start_matches("$.").to_owned(), reason: reason.into() }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    let actual = type_name(value);
    actual == wanted || (wanted == "number" && actual == "integer")
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), ConfigMismatch> {
    let Some(schema) = schema.as_object() else { return Ok(()) };
    match schema.get("type") {
        Some(Value::String(wanted)) if !has_type(value, wanted) => {
            return Err(mismatch(path, format!("expected {wanted}, found {}", type_name(value))));
        }
        Some(Value::Array(options)) if !options.iter().filter_map(Value::as_str).any(|t| has_type(value, t)) => {
            return Err(mismatch(
                path,
                format!("expected one of {}, found {}", Value::Array(options.clone()), type_name(value)),
            ));
        }
        _ => {}
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return Err(mismatch(path, format!("must be one of {}", Value::Array(allowed.clone()))));
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && number < min
        {
            return Err(mismatch(path, format!("must be at least {min}")));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && number > max
        {
            return Err(mismatch(path, format!("must be at most {max}")));
        }
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| length < min) {
            return Err(mismatch(path, "is too short"));
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| length > max) {
            return Err(mismatch(path, "is too long"));
        }
    }
    if let Value::Object(fields) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) {
                    return Err(mismatch(&format!("{path}.{name}"), "is required"));
                }
            }
        }
        for (name, field) in fields {
            let field_path = format!("{path}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => check(field_schema, field, &field_path)?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(mismatch(&field_path, "is not a known setting"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["window-days"],
            "properties": {
                "window-days": {"type": "integer", "minimum": 1, "maximum": 3650},
                "mode": {"enum": ["strict", "lenient"]},
                "tiers": {"type": "array", "items": {"type": "object", "properties": {"threshold": {"type": "integer", "minimum": 0}}}}
            }
        })
    }

    #[test]
    fn currency_and_locale_left_unset_follow_the_shop() {
        let schema = json!({"type": "object", "properties": {
            "currency": {"type": "string", "default": "EUR"},
            "locale": {"enum": ["en", "zh-CN"]},
            "unit": {"type": "integer"}
        }});
        assert_eq!(
            with_shop_defaults(&schema, &json!({"unit": 1}), "CNY", "zh-CN"),
            json!({"unit": 1, "currency": "CNY", "locale": "zh-CN"})
        );
        // The merchant's own choice stands; a shop value the schema refuses is not forced in.
        assert_eq!(with_shop_defaults(&schema, &json!({"currency": "USD"}), "CNY", "fr"), json!({"currency": "USD"}));
        // A plugin that declares neither gets its config untouched.
        let other = json!({"type": "object", "properties": {"window-days": {"type": "integer"}}});
        assert_eq!(with_shop_defaults(&other, &json!({}), "CNY", "zh-CN"), json!({}));
    }

    #[test]
    fn accepts_a_matching_config() {
        let config = json!({"window-days": 365, "mode": "strict", "tiers": [{"threshold": 0}, {"threshold": 500}]});
        assert_eq!(validate(&schema(), &config), Ok(()));
    }

    #[test]
    fn names_the_failing_field() {
        let cases = [
            (json!({"window-days": 0}), "window-days", "must be at least 1"),
            (json!({"window-days": "365"}), "window-days", "expected integer, found string"),
            (json!({}), "window-days", "is required"),
            (json!({"window-days": 30, "colour": "red"}), "colour", "is not a known setting"),
            (json!({"window-days": 30, "mode": "loose"}), "mode", "must be one of"),
            (
                json!({"window-days": 30, "tiers": [{"threshold": 1}, {"threshold": -5}]}),
                "tiers[1].threshold",
                "must be at least 0",
            ),
        ];
        for (config, path, reason) in cases {
            let error = validate(&schema(), &config).expect_err("mismatch");
            assert_eq!(error.path, path, "{config}");
            assert!(error.reason.contains(reason), "{config}: {}", error.reason);
        }
    }
}
