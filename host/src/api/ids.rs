//! 64-bit ids leave the API as JSON strings: JavaScript reads JSON numbers as doubles,
//! which round ids above 2^53 (`2964773299113840960` becomes `2964773299113841000`).
//! Use with `#[serde(serialize_with = "…")]` on every id a client can receive.

use serde::Serializer;

/// An id as a JSON string.
pub fn string<S: Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// An optional id as a JSON string or null.
#[allow(clippy::ref_option, reason = "serde's serialize_with passes a reference to the field")]
pub fn option_string<S: Serializer>(id: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.collect_str(id),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Ids {
        #[serde(serialize_with = "super::string")]
        id: i64,
        #[serde(serialize_with = "super::option_string")]
        some: Option<i64>,
        #[serde(serialize_with = "super::option_string")]
        none: Option<i64>,
    }

    #[test]
    fn ids_above_2_pow_53_survive_as_strings() {
        let json =
            serde_json::to_value(Ids { id: 2_964_773_299_113_840_960, some: Some(7), none: None }).expect("json");
        assert_eq!(json, serde_json::json!({"id": "2964773299113840960", "some": "7", "none": null}));
    }
}
