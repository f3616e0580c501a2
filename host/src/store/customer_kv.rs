//! Plugin kv entries keyed to one customer. A plugin that keeps something about a
//! customer names its key with the customer's id (the profile's `id`) as one of the
//! key's `:`-separated parts — `welcome:8175794170014771298`, `views:…`, or the id alone
//! — as the SDK's `kv` documents. The host finds those entries by that convention: it
//! exports them with the customer, erases them with them, and on a merge renames the
//! merged-away record's entries to the survivor (the survivor's own entry wins when
//! both have the key). Ids are 64-bit numbers written in decimal, so a key that merely
//! contains other digits is not mistaken for one.

use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use super::{StoreError, StoreResult};

/// The `WHERE` condition on `key` for customer `$2` (as text): the id is a whole
/// `:`-separated part of the key.
const KEYED_TO: &str = "(key = $2 OR key LIKE $3 OR key LIKE $4 OR key LIKE $5)";

fn patterns(customer_id: i64) -> [String; 4] {
    let id = customer_id.to_string();
    [id.clone(), format!("{id}:%"), format!("%:{id}"), format!("%:{id}:%")]
}

/// Whether `key` names `customer_id` as one of its parts (the SQL `LIKE` also matches
/// what only looks alike, e.g. across a longer number; this settles it).
fn names(key: &str, customer_id: &str) -> bool {
    key.split(':').any(|part| part == customer_id)
}

/// `(plugin, key, value_hex)` of every entry keyed to the customer.
async fn keyed(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<Vec<(String, String, String)>> {
    let [exact, first, last, middle] = patterns(customer_id);
    let rows = sqlx::query(&format!(
        "SELECT plugin, key, value_hex FROM plugin_kv WHERE shop_id = $1 AND {KEYED_TO} ORDER BY plugin, key"
    ))
    .bind(shop_id)
    .bind(exact)
    .bind(first)
    .bind(last)
    .bind(middle)
    .fetch_all(&mut *conn)
    .await?;
    let id = customer_id.to_string();
    rows.iter()
        .map(|r| Ok((r.try_get("plugin")?, r.try_get("key")?, r.try_get("value_hex")?)))
        .filter(|entry: &StoreResult<(String, String, String)>| {
            entry.as_ref().map_or(true, |(_, key, _)| names(key, &id))
        })
        .collect()
}

/// The entries keyed to the customer, for an export: the value as JSON when it is JSON,
/// as text when it is text, else hex.
pub(crate) async fn export(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<Value> {
    let mut entries = Vec::new();
    for (plugin, key, value_hex) in keyed(conn, shop_id, customer_id).await? {
        let bytes = hex::decode(&value_hex).map_err(|e| StoreError::Corrupt(format!("plugin kv: {e}")))?;
        let value = match String::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            Err(_) => json!({ "hex": value_hex }),
        };
        entries.push(json!({ "plugin": plugin, "key": key, "value": value }));
    }
    Ok(Value::Array(entries))
}

/// Deletes the entries keyed to the customer; returns how many.
pub(crate) async fn erase(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<u64> {
    let entries = keyed(conn, shop_id, customer_id).await?;
    for (plugin, key, _) in &entries {
        delete(conn, shop_id, plugin, key).await?;
    }
    Ok(entries.len() as u64)
}

async fn delete(conn: &mut AnyConnection, shop_id: i64, plugin: &str, key: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM plugin_kv WHERE shop_id = $1 AND plugin = $2 AND key = $3")
        .bind(shop_id)
        .bind(plugin)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Renames the entries keyed to `loser` to `winner`, unless the winner has the same key;
/// returns how many moved.
pub(crate) async fn merge(conn: &mut AnyConnection, shop_id: i64, loser: i64, winner: i64) -> StoreResult<u64> {
    let (loser_id, winner_id) = (loser.to_string(), winner.to_string());
    let mut moved = 0;
    for (plugin, key, value_hex) in keyed(conn, shop_id, loser).await? {
        let renamed: Vec<&str> =
            key.split(':').map(|part| if part == loser_id { winner_id.as_str() } else { part }).collect();
        moved += sqlx::query(
            "INSERT INTO plugin_kv (shop_id, plugin, key, value_hex) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (shop_id, plugin, key) DO NOTHING",
        )
        .bind(shop_id)
        .bind(&plugin)
        .bind(renamed.join(":"))
        .bind(&value_hex)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        delete(conn, shop_id, &plugin, &key).await?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn a_key_names_a_customer_by_a_whole_part() {
        for key in ["welcome:42", "42", "42:views", "a:42:b"] {
            assert!(names(key, "42"), "{key}");
        }
        for key in ["welcome:420", "142", "welcome-42", "a:4:2"] {
            assert!(!names(key, "42"), "{key}");
        }
    }
}
