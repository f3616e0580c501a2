//! Patron's own import format: the API's JSON objects, one per line (NDJSON), or CSV
//! whose columns are the same field names. In CSV, nested fields of an order are
//! written with their path — `customer.email`, `lines.title`, `lines.quantity` — and an
//! order spans consecutive rows with the same `id`, one per line item. Amounts are
//! integer minor units, as in the API; times are RFC 3339 or unix milliseconds.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::table::{Columns, Grouped, Row, Table};
use super::{ImportError, ImportKind, Parsed, Record, Source};
use crate::store::customers::CustomerInput;
use crate::store::orders::OrderInput;
use crate::store::products::Product;
use crate::timestamp::Timestamp;

/// How a CSV cell becomes a JSON value.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Text,
    Integer,
    Boolean,
    /// RFC 3339 or unix milliseconds; becomes milliseconds.
    Time,
    /// A JSON object written in the cell.
    Json,
    /// Comma-separated values.
    List,
}

const CUSTOMER_FIELDS: &[(&str, Cell)] = &[
    ("external_id", Cell::Text),
    ("email", Cell::Text),
    ("phone", Cell::Text),
    ("first_name", Cell::Text),
    ("last_name", Cell::Text),
    ("birthday", Cell::Text),
    ("marketing_consent", Cell::Boolean),
    ("traits", Cell::Json),
    ("created_at", Cell::Time),
];

const PRODUCT_FIELDS: &[(&str, Cell)] = &[
    ("id", Cell::Text),
    ("title", Cell::Text),
    ("price", Cell::Integer),
    ("currency", Cell::Text),
    ("category", Cell::Text),
    ("url", Cell::Text),
    ("image_url", Cell::Text),
    ("available", Cell::Boolean),
];

const ORDER_FIELDS: &[(&str, Cell)] = &[
    ("id", Cell::Text),
    ("status", Cell::Text),
    ("currency", Cell::Text),
    ("discount", Cell::Integer),
    ("shipping", Cell::Integer),
    ("tax", Cell::Integer),
    ("total", Cell::Integer),
    ("coupon_codes", Cell::List),
    ("placed_at", Cell::Time),
];

const LINE_FIELDS: &[(&str, Cell)] = &[
    ("product_id", Cell::Text),
    ("sku", Cell::Text),
    ("title", Cell::Text),
    ("category", Cell::Text),
    ("quantity", Cell::Integer),
    ("unit_price", Cell::Integer),
];

const CUSTOMER_PREFIX: &str = "customer.";
const LINE_PREFIX: &str = "lines.";

/// Whether `column` is a field of a `kind` record.
fn is_known(kind: ImportKind, column: &str) -> bool {
    let known = |fields: &[(&str, Cell)], name: &str| fields.iter().any(|(field, _)| *field == name);
    match kind {
        ImportKind::Customers => known(CUSTOMER_FIELDS, column),
        ImportKind::Products => known(PRODUCT_FIELDS, column),
        ImportKind::Orders => {
            known(ORDER_FIELDS, column)
                || column.strip_prefix(CUSTOMER_PREFIX).is_some_and(|f| known(CUSTOMER_FIELDS, f))
                || column.strip_prefix(LINE_PREFIX).is_some_and(|f| known(LINE_FIELDS, f))
        }
    }
}

/// Refuses a CSV header that is not Patron's format for `kind`, naming what is wrong.
pub(super) fn check_columns(kind: ImportKind, columns: &Columns) -> Result<(), ImportError> {
    let unknown: Vec<&str> = columns.names().iter().map(String::as_str).filter(|c| !is_known(kind, c)).collect();
    if !unknown.is_empty() {
        return Err(ImportError::UnknownFormat(format!(
            "not a Shopify export, and not Patron's {kind} CSV: unknown column(s) {}",
            unknown.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    let required = match kind {
        ImportKind::Customers => None,
        ImportKind::Orders | ImportKind::Products => Some("id"),
    };
    if let Some(required) = required.filter(|r| !columns.has(r)) {
        return Err(ImportError::UnknownFormat(format!("Patron's {kind} CSV needs an `{required}` column")));
    }
    Ok(())
}

/// Reads one cell as the JSON value its field takes.
fn cell_value(column: &str, text: &str, cell: Cell) -> Result<Value, String> {
    match cell {
        Cell::Text => Ok(Value::String(text.to_owned())),
        Cell::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{column}: `{text}` is not an integer (amounts are minor units: 1999 for 19.99)")),
        Cell::Boolean => match text.to_lowercase().as_str() {
            "true" | "yes" | "1" | "y" => Ok(Value::Bool(true)),
            "false" | "no" | "0" | "n" => Ok(Value::Bool(false)),
            _ => Err(format!("{column}: `{text}` is not true or false")),
        },
        Cell::Time => text
            .parse::<i64>()
            .ok()
            .or_else(|| Timestamp::parse(text).map(|t| t.0))
            .map(Value::from)
            .ok_or_else(|| format!("{column}: `{text}` is not an RFC 3339 time or unix milliseconds")),
        Cell::Json => serde_json::from_str(text).map_err(|e| format!("{column}: not JSON: {e}")),
        Cell::List => Ok(Value::Array(
            text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect(),
        )),
    }
}

/// The object made of a row's non-empty cells named `prefix` + a field of `fields`.
fn object(row: &Row, prefix: &str, fields: &[(&str, Cell)]) -> Result<Map<String, Value>, String> {
    let mut object = Map::new();
    for (column, text) in row.cells() {
        let Some(name) = column.strip_prefix(prefix) else { continue };
        if let Some((field, cell)) = fields.iter().find(|(field, _)| *field == name) {
            object.insert((*field).to_owned(), cell_value(column, text, *cell)?);
        }
    }
    Ok(object)
}

/// The JSON object for the order written on `rows`: order fields and customer from the
/// first row, one line item per row.
fn order_object(rows: &[Row]) -> Result<Value, (u64, String)> {
    let first = &rows[0];
    let mut order = object(first, "", ORDER_FIELDS).map_err(|e| (first.line, e))?;
    let customer = object(first, CUSTOMER_PREFIX, CUSTOMER_FIELDS).map_err(|e| (first.line, e))?;
    if !customer.is_empty() {
        order.insert("customer".into(), Value::Object(customer));
    }
    let mut lines = Vec::new();
    for row in rows {
        let line = object(row, LINE_PREFIX, LINE_FIELDS).map_err(|e| (row.line, e))?;
        if !line.is_empty() {
            lines.push(Value::Object(line));
        }
    }
    order.insert("lines".into(), Value::Array(lines));
    Ok(Value::Object(order))
}

/// Deserializes and validates one record of `kind`.
fn record(kind: ImportKind, value: Value, shop_currency: &str) -> Result<Record, String> {
    let invalid = |e: serde_json::Error| e.to_string();
    match kind {
        ImportKind::Customers => {
            let input: CustomerInput = serde_json::from_value(value).map_err(invalid)?;
            Ok(Record::Customer { input: input.validate().map_err(|e| e.to_string())?, tags: None })
        }
        ImportKind::Products => {
            let product: Product = serde_json::from_value(value).map_err(invalid)?;
            Ok(Record::Product(product.validate().map_err(|e| e.to_string())?))
        }
        ImportKind::Orders => {
            let input: OrderInput = serde_json::from_value(value).map_err(invalid)?;
            let (order, customer) = input.validate(shop_currency).map_err(|e| e.to_string())?;
            Ok(Record::Order { order, customer, refunded: 0 })
        }
    }
}

fn parsed(row: u64, result: Result<Record, String>) -> Parsed {
    match result {
        Ok(record) => Parsed::Record { row, record },
        Err(reason) => Parsed::rejected(row, reason),
    }
}

/// Records from Patron-format NDJSON; blank lines are skipped.
pub(super) fn ndjson<R: Read + Send + 'static>(kind: ImportKind, reader: R, shop_currency: String) -> Source {
    let lines = BufReader::new(reader).lines().enumerate();
    Box::new(lines.filter_map(move |(i, line)| {
        let row = i as u64 + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some(Err(ImportError::Unreadable(e.to_string()))),
        };
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let value = serde_json::from_str::<Value>(line).map_err(|e| format!("not JSON: {e}"));
        Some(Ok(parsed(row, value.and_then(|v| record(kind, v, &shop_currency)))))
    }))
}

/// Records from Patron-format CSV.
pub(super) fn csv<R: Read + Send + 'static>(kind: ImportKind, table: Table<R>, shop_currency: String) -> Source {
    match kind {
        ImportKind::Orders => Box::new(Grouped::new(table.columns.column("id"), table).map(move |group| {
            Ok(match group? {
                Err(bad) => Parsed::rejected(bad.line, bad.reason),
                Ok(rows) => match order_object(&rows) {
                    Ok(value) => parsed(rows[0].line, record(kind, value, &shop_currency)),
                    Err((line, reason)) => Parsed::rejected(line, reason),
                },
            })
        })),
        ImportKind::Customers | ImportKind::Products => {
            let fields = if kind == ImportKind::Customers { CUSTOMER_FIELDS } else { PRODUCT_FIELDS };
            Box::new(table.map(move |row| {
                Ok(match row? {
                    Err(bad) => Parsed::rejected(bad.line, bad.reason),
                    Ok(row) => parsed(
                        row.line,
                        object(&row, "", fields).and_then(|o| record(kind, Value::Object(o), &shop_currency)),
                    ),
                })
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(kind: ImportKind, csv_text: &'static str) -> Vec<Parsed> {
        let table = Table::open(csv_text.as_bytes()).expect("header");
        check_columns(kind, &table.columns).expect("columns");
        csv(kind, table, "USD".into()).map(|p| p.expect("readable")).collect()
    }

    #[test]
    fn reads_orders_spanning_rows() {
        let parsed = read(
            ImportKind::Orders,
            "id,status,placed_at,customer.email,lines.title,lines.quantity,lines.unit_price,coupon_codes\n\
             A1,paid,2024-03-05T10:00:00Z,Ann@Example.com,Mug,2,1250,\"SPRING, vip\"\n\
             A1,,,,Beans,1,1800,\n\
             A2,pending,1700000000000,,Tea,1,900,\n",
        );
        assert_eq!(parsed.len(), 2);
        let Parsed::Record { row: 2, record: Record::Order { order, customer, .. } } = &parsed[0] else {
            panic!("expected order at row 2, got {parsed:?}");
        };
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.subtotal, 2 * 1250 + 1800);
        assert_eq!(order.total, order.subtotal);
        assert_eq!(order.coupon_codes, vec!["SPRING".to_owned(), "VIP".to_owned()]);
        assert_eq!(customer.as_ref().and_then(|c| c.email.as_deref()), Some("ann@example.com"));
        assert!(matches!(&parsed[1], Parsed::Record { row: 4, record: Record::Order { .. } }));
    }

    #[test]
    fn rejects_bad_cells_with_their_row_and_reason() {
        let parsed = read(
            ImportKind::Products,
            "id,title,price,available\np1,Mug,12.50,yes\np2,Beans,1800,maybe\n,Nameless,100,\np4,Tea,900,no\n",
        );
        let reasons: Vec<(u64, String)> = parsed
            .iter()
            .filter_map(|p| match p {
                Parsed::Rejected(r) => Some((r.row, r.reason.clone())),
                Parsed::Record { .. } => None,
            })
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].0 == 2 && reasons[0].1.contains("minor units"));
        assert!(reasons[1].0 == 3 && reasons[1].1.contains("true or false"));
        assert!(reasons[2].0 == 4 && reasons[2].1.contains("id"));
        assert!(matches!(&parsed[3], Parsed::Record { row: 5, record: Record::Product(p) } if !p.available));
    }

    #[test]
    fn reads_ndjson_records_and_rejects_bad_lines() {
        let text = "{\"external_id\":\"c1\",\"email\":\"a@b.co\",\"marketing_consent\":true}\n\n\
                    {\"email\":\"not-an-email\"}\n{broken\n";
        let parsed: Vec<Parsed> =
            ndjson(ImportKind::Customers, text.as_bytes(), "USD".into()).map(|p| p.expect("readable")).collect();
        assert!(
            matches!(&parsed[0], Parsed::Record { row: 1, record: Record::Customer { input: c, .. } } if c.marketing_consent == Some(true))
        );
        assert!(matches!(&parsed[1], Parsed::Rejected(r) if r.row == 3 && r.reason.contains("email")));
        assert!(matches!(&parsed[2], Parsed::Rejected(r) if r.row == 4 && r.reason.contains("JSON")));
    }
}
