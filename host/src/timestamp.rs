//! Points in time as they cross the API: RFC 3339 strings or unix milliseconds in,
//! unix milliseconds inside.

use serde::{Deserialize, Deserializer, de};

/// The latest time Patron accepts: the end of year 9999, in unix milliseconds. With the
/// earliest (1970), it keeps differences and sums of times far from overflowing `i64`.
pub const LATEST_MS: i64 = 253_402_300_799_999;

/// Whether `ms` is between 1970 and the end of year 9999.
pub fn in_range(ms: i64) -> bool {
    (0..=LATEST_MS).contains(&ms)
}

/// A point in time in unix milliseconds, read from either an RFC 3339 string or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
            return Some(Self(t.timestamp_millis()));
        }
        // Store exports often write "2024-03-05 14:07:00 +0100".
        for format in ["%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"] {
            if let Ok(t) = chrono::DateTime::parse_from_str(text.trim(), format) {
                return Some(Self(t.timestamp_millis()));
            }
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text.trim(), format) {
                return Some(Self(t.and_utc().timestamp_millis()));
            }
        }
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Self(t.and_utc().timestamp_millis()))
    }
}

/// Formats unix milliseconds as RFC 3339 (UTC).
pub fn to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        let time = match Raw::deserialize(deserializer)? {
            Raw::Millis(ms) => Self(ms),
            Raw::Text(text) => Self::parse(&text)
                .ok_or_else(|| de::Error::custom(format!("`{text}` is not an RFC 3339 time or unix milliseconds")))?,
        };
        if !in_range(time.0) {
            return Err(de::Error::custom(format!("{} is not a time between 1970 and 9999", time.0)));
        }
        Ok(time)
    }
}

/// In the OpenAPI document: unix milliseconds or an RFC 3339 time, 1970 to 9999.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0))
                    .maximum(Some(LATEST_MS)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .description(Some("A time: unix milliseconds or an RFC 3339 string, between 1970 and 9999"))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_formats_stores_emit() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:01Z"), Some(Timestamp(1000)));
        assert_eq!(Timestamp::parse("1970-01-01 01:00:01 +0100"), Some(Timestamp(1000)));
        assert_eq!(Timestamp::parse("1970-01-02"), Some(Timestamp(86_400_000)));
        assert_eq!(Timestamp::parse("yesterday"), None);
        let from_number: Timestamp = serde_json::from_str("1234").expect("number");
        assert_eq!(from_number, Timestamp(1234));
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    }
}
