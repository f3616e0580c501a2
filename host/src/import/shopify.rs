//! Shopify's CSV exports: customers (Customers → Export) and orders (Orders → Export).
//!
//! The order export writes one row per line item; the order's own fields (status,
//! amounts, dates) are filled on its first row only, and every row repeats the order's
//! `Name` (#1001), which is the order id Patron keeps. Shopify's `Subtotal` is after
//! discounts; Patron's subtotal is the sum of the lines, and `Total` is kept as Shopify
//! states it. The export names no product id, so lines carry the SKU and title only.
//! Customer IDs do not appear in the order export: an order finds its customer by email.

use std::collections::BTreeSet;
use std::io::Read;

use serde_json::{Map, Value};

use super::money::{minor_unit_exponent, parse_minor_units};
use super::table::{Column, Columns, Grouped, Row, Table};
use super::{Parsed, Record, Source};
use crate::plugins::actions::{MAX_TAG_LEN, check_name};
use crate::store::customers::CustomerInput;
use crate::store::orders::{OrderInput, OrderLine, OrderStatus};
use crate::timestamp::Timestamp;

/// Whether a header is Shopify's order export.
pub(super) fn is_order_export(columns: &Columns) -> bool {
    columns.has("Name") && columns.has("Lineitem quantity") && columns.has("Lineitem name")
}

/// Whether a header is Shopify's customer export (current or older column names).
pub(super) fn is_customer_export(columns: &Columns) -> bool {
    columns.has("Email")
        && (columns.has("Customer ID")
            || (columns.has("First Name")
                && (columns.has("Accepts Email Marketing") || columns.has("Accepts Marketing"))))
}

/// A cell that must be yes/no when present.
fn yes_no(row: &Row, column: &str) -> Result<Option<bool>, String> {
    match row.get(column).map(str::to_lowercase).as_deref() {
        None => Ok(None),
        Some("yes" | "true" | "1" | "subscribed") => Ok(Some(true)),
        Some("no" | "false" | "0" | "unsubscribed" | "not_subscribed" | "pending") => Ok(Some(false)),
        Some(other) => Err(format!("{column}: `{other}` is not yes or no")),
    }
}

/// Customers from a Shopify customer export. Tags, note, SMS consent and default address
/// become traits; Shopify's own spend figures are left out, as Patron derives them from orders.
pub(super) fn customers<R: Read + Send + 'static>(table: Table<R>) -> Source {
    let birthday_column = table.columns.find_containing("birth").map(str::to_owned);
    Box::new(table.map(move |row| {
        Ok(match row? {
            Err(bad) => Parsed::rejected(bad.line, bad.reason),
            Ok(row) => match customer(&row, birthday_column.as_deref()) {
                Ok((input, tags)) => Parsed::Record { row: row.line, record: Record::Customer { input, tags } },
                Err(reason) => Parsed::rejected(row.line, reason),
            },
        })
    }))
}

/// The customer of a row and, when the export has a `Tags` column, their tags: each
/// checked as every tag is (1 to 64 printable characters), so that rules can test them.
fn customer(row: &Row, birthday_column: Option<&str>) -> Result<(CustomerInput, Option<BTreeSet<String>>), String> {
    let text = |column: &str| row.get(column).map(str::to_owned);
    let mut traits = Map::new();
    let mut tag_set = row.has_column("Tags").then(BTreeSet::new);
    if let Some(tags) = row.get("Tags") {
        let tags: Vec<&str> = tags.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        for tag in &tags {
            check_name("tag", tag, MAX_TAG_LEN).map_err(|e| format!("Tags: {e}"))?;
        }
        tag_set = Some(tags.iter().map(|t| (*t).to_owned()).collect());
        // Kept as a trait too, as before, for plugins that read it there.
        traits.insert("tags".into(), Value::Array(tags.into_iter().map(|t| Value::String(t.to_owned())).collect()));
    }
    if let Some(note) = row.get("Note") {
        traits.insert("note".into(), note.into());
    }
    if let Some(sms) = yes_no(row, "Accepts SMS Marketing")? {
        traits.insert("sms_consent".into(), sms.into());
    }
    if let Some(exempt) = yes_no(row, "Tax Exempt")? {
        traits.insert("tax_exempt".into(), exempt.into());
    }
    let mut address = Map::new();
    for (field, current, older) in [
        ("company", "Default Address Company", "Company"),
        ("city", "Default Address City", "City"),
        ("province", "Default Address Province Code", "Province Code"),
        ("country", "Default Address Country Code", "Country Code"),
        ("zip", "Default Address Zip", "Zip"),
    ] {
        if let Some(value) = row.get(current).or_else(|| row.get(older)) {
            address.insert(field.into(), value.into());
        }
    }
    if !address.is_empty() {
        traits.insert("address".into(), Value::Object(address));
    }
    let consent = match yes_no(row, "Accepts Email Marketing")? {
        Some(consent) => Some(consent),
        None => yes_no(row, "Accepts Marketing")?,
    };
    CustomerInput {
        external_id: text("Customer ID"),
        email: text("Email"),
        phone: text("Phone").or_else(|| text("Default Address Phone")),
        first_name: text("First Name"),
        last_name: text("Last Name"),
        birthday: birthday_column.and_then(text),
        marketing_consent: consent,
        traits: (!traits.is_empty()).then_some(traits),
        created_at: None,
    }
    .validate()
    .map(|input| (input, tag_set))
    .map_err(|e| e.to_string())
}

/// The order export's columns, looked up once per file.
struct OrderColumns {
    name: Column,
    email: Column,
    financial_status: Column,
    fulfillment_status: Column,
    currency: Column,
    shipping: Column,
    taxes: Column,
    total: Column,
    discount_code: Column,
    discount_amount: Column,
    created_at: Column,
    cancelled_at: Column,
    lineitem_quantity: Column,
    lineitem_name: Column,
    lineitem_price: Column,
    lineitem_sku: Column,
    refunded_amount: Column,
}

impl OrderColumns {
    fn of(columns: &Columns) -> Self {
        Self {
            name: columns.column("Name"),
            email: columns.column("Email"),
            financial_status: columns.column("Financial Status"),
            fulfillment_status: columns.column("Fulfillment Status"),
            currency: columns.column("Currency"),
            shipping: columns.column("Shipping"),
            taxes: columns.column("Taxes"),
            total: columns.column("Total"),
            discount_code: columns.column("Discount Code"),
            discount_amount: columns.column("Discount Amount"),
            created_at: columns.column("Created at"),
            cancelled_at: columns.column("Cancelled at"),
            lineitem_quantity: columns.column("Lineitem quantity"),
            lineitem_name: columns.column("Lineitem name"),
            lineitem_price: columns.column("Lineitem price"),
            lineitem_sku: columns.column("Lineitem sku"),
            refunded_amount: columns.column("Refunded Amount"),
        }
    }
}

/// Orders from a Shopify order export, one per run of rows with the same `Name`.
pub(super) fn orders<R: Read + Send + 'static>(table: Table<R>, shop_currency: String) -> Source {
    let columns = OrderColumns::of(&table.columns);
    Box::new(Grouped::new(columns.name, table).map(move |group| {
        Ok(match group? {
            Err(bad) => Parsed::rejected(bad.line, bad.reason),
            Ok(rows) => match order(&columns, &rows, &shop_currency) {
                Ok(record) => Parsed::Record { row: rows[0].line, record },
                Err((line, reason)) => Parsed::rejected(line, reason),
            },
        })
    }))
}

/// The status Patron keeps for a Shopify order.
fn status(columns: &OrderColumns, row: &Row) -> Result<OrderStatus, String> {
    if row.at(columns.cancelled_at).is_some() {
        return Ok(OrderStatus::Cancelled);
    }
    let fulfilled = row.at(columns.fulfillment_status).is_some_and(|s| s.eq_ignore_ascii_case("fulfilled"));
    let financial = row.at(columns.financial_status).map(str::to_lowercase);
    Ok(match financial.as_deref() {
        Some("paid" | "partially_paid" | "partially_refunded") if fulfilled => OrderStatus::Fulfilled,
        Some("paid" | "partially_paid" | "partially_refunded") => OrderStatus::Paid,
        Some("refunded") => OrderStatus::Refunded,
        Some("voided") => OrderStatus::Cancelled,
        Some("pending" | "authorized" | "expired") | None => OrderStatus::Pending,
        Some(other) => return Err(format!("Financial Status: `{other}` is not a Shopify financial status")),
    })
}

/// One order from its rows; an error names the row it is about.
fn order(columns: &OrderColumns, rows: &[Row], shop_currency: &str) -> Result<Record, (u64, String)> {
    let first = &rows[0];
    let at_first = |reason: String| (first.line, reason);
    let id = first.at(columns.name).ok_or_else(|| at_first("Name: an order needs its name (#1001)".into()))?;
    let currency = first.at(columns.currency).unwrap_or(shop_currency).to_uppercase();
    let exponent = minor_unit_exponent(&currency);
    let amount = |row: &Row, column: Column| -> Result<Option<i64>, (u64, String)> {
        row.at(column)
            .map(|text| parse_minor_units(text, exponent).map_err(|e| (row.line, format!("{}: {e}", column.name))))
            .transpose()
    };
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(title) = row.at(columns.lineitem_name) else { continue };
        let quantity = match row.at(columns.lineitem_quantity) {
            Some(q) => {
                q.parse::<i64>().map_err(|_| (row.line, format!("Lineitem quantity: `{q}` is not a whole number")))?
            }
            None => 1,
        };
        lines.push(OrderLine {
            product_id: None,
            sku: row.at(columns.lineitem_sku).map(str::to_owned),
            title: title.to_owned(),
            category: None,
            quantity,
            unit_price: amount(row, columns.lineitem_price)?.unwrap_or(0),
        });
    }
    let created = first.at(columns.created_at).ok_or_else(|| at_first("Created at: missing".into()))?;
    let placed_at =
        Timestamp::parse(created).ok_or_else(|| at_first(format!("Created at: `{created}` is not a date and time")))?;
    let status = status(columns, first).map_err(at_first)?;
    let total = amount(first, columns.total)?;
    let input = OrderInput {
        id: id.to_owned(),
        customer: first
            .at(columns.email)
            .map(|email| CustomerInput { email: Some(email.to_owned()), ..CustomerInput::default() }),
        status,
        currency: Some(currency),
        lines,
        discount: amount(first, columns.discount_amount)?.unwrap_or(0).abs(),
        shipping: amount(first, columns.shipping)?.unwrap_or(0),
        tax: amount(first, columns.taxes)?.unwrap_or(0),
        total,
        coupon_codes: first
            .at(columns.discount_code)
            .map_or_else(Vec::new, |codes| codes.split(',').map(str::to_owned).collect()),
        placed_at: Some(placed_at),
    };
    let (order, customer) = input.validate(shop_currency).map_err(|e| at_first(e.to_string()))?;
    let mut refunded = amount(first, columns.refunded_amount)?.unwrap_or(0);
    if status == OrderStatus::Refunded && refunded == 0 {
        refunded = order.total;
    }
    if refunded > order.total {
        return Err(at_first(format!("Refunded Amount: more than the order's total of {}", order.total)));
    }
    Ok(Record::Order { order, customer, refunded })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Name,Email,Financial Status,Paid at,Fulfillment Status,Currency,Subtotal,Shipping,Taxes,\
                          Total,Discount Code,Discount Amount,Created at,Lineitem quantity,Lineitem name,\
                          Lineitem price,Lineitem sku,Refunded Amount,Cancelled at,Id";

    fn read_orders(body: &str) -> Vec<Parsed> {
        read_orders_in("EUR", body)
    }

    fn read_orders_in(shop_currency: &str, body: &str) -> Vec<Parsed> {
        let text = format!("{HEADER}\n{body}");
        let table = Table::open(std::io::Cursor::new(text.into_bytes())).expect("header");
        assert!(is_order_export(&table.columns));
        orders(table, shop_currency.into()).map(|p| p.expect("readable")).collect()
    }

    #[test]
    fn an_order_in_another_currency_than_the_shops_is_refused() {
        let parsed = read_orders_in(
            "USD",
            "#1002,bo@example.com,paid,,,CNY,432.00,0,0,432.00,,,2024-03-05 14:06:00 +0100,1,Tea,432.00,T-1,,,77\n",
        );
        let [Parsed::Rejected(rejection)] = parsed.as_slice() else { panic!("expected a refusal, got {parsed:?}") };
        assert!(rejection.reason.contains("CNY") && rejection.reason.contains("USD"), "{rejection:?}");
    }

    #[test]
    fn reads_an_order_spanning_rows() {
        let parsed = read_orders(
            "#1001,Ada@Example.com,partially_refunded,2024-03-05 14:07:00 +0100,fulfilled,EUR,45.00,4.95,8.55,\
             58.50,SPRING5,5.00,2024-03-05 14:06:00 +0100,2,Ceramic Mug,12.50,MUG-1,10.00,,5551\n\
             #1001,Ada@Example.com,,,,,,,,,,,2024-03-05 14:06:00 +0100,1,Coffee Beans,25.00,BEAN-1,,,\n",
        );
        let [Parsed::Record { row: 2, record: Record::Order { order, customer, refunded } }] = parsed.as_slice() else {
            panic!("expected one order, got {parsed:?}");
        };
        assert_eq!(order.id, "#1001");
        assert_eq!(order.status, OrderStatus::Fulfilled);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.subtotal, 5000);
        assert_eq!((order.discount, order.shipping, order.tax, order.total), (500, 495, 855, 5850));
        assert_eq!(*refunded, 1000);
        assert_eq!(order.coupon_codes, vec!["SPRING5".to_owned()]);
        assert_eq!(order.placed_at, Timestamp::parse("2024-03-05T13:06:00Z").map(|t| t.0).unwrap_or_default());
        assert_eq!(order.lines[1].sku.as_deref(), Some("BEAN-1"));
        assert_eq!(customer.as_ref().and_then(|c| c.email.as_deref()), Some("ada@example.com"));
    }

    #[test]
    fn maps_statuses_and_rejects_bad_amounts() {
        let parsed = read_orders_in(
            "USD",
            "#1,a@b.co,refunded,,,USD,10,0,0,10,,,2024-01-01 00:00:00 +0000,1,X,10,,,,\n\
             #2,a@b.co,paid,,,USD,10,0,0,10,,,2024-01-01 00:00:00 +0000,1,X,10,,,2024-01-02 00:00:00 +0000,\n\
             #3,a@b.co,paid,,,USD,10,0,0,ten,,,2024-01-01 00:00:00 +0000,1,X,10,,,,\n\
             #4,a@b.co,paid,,,USD,10,0,0,10,,,2024-01-01 00:00:00 +0000,1,X,10,,,,\n\
             #4,a@b.co,,,,,,,,,,,,1,Y,1.999,,,,\n\
             #5,,pending,,,JPY,1500,0,0,1500,,,2024-01-01 00:00:00 +0000,1,Z,1500,,,,\n",
        );
        assert!(
            matches!(&parsed[0], Parsed::Record { record: Record::Order { order, refunded: 1000, .. }, .. } if order.status == OrderStatus::Refunded)
        );
        assert!(
            matches!(&parsed[1], Parsed::Record { record: Record::Order { order, .. }, .. } if order.status == OrderStatus::Cancelled)
        );
        assert!(matches!(&parsed[2], Parsed::Rejected(r) if r.row == 4 && r.reason.starts_with("Total:")));
        assert!(matches!(&parsed[3], Parsed::Rejected(r) if r.row == 6 && r.reason.contains("decimal places")));
        assert!(matches!(&parsed[4], Parsed::Rejected(r) if r.row == 7 && r.reason.contains("JPY")), "{parsed:?}");
        let parsed =
            read_orders_in("JPY", "#5,,pending,,,JPY,1500,0,0,1500,,,2024-01-01 00:00:00 +0000,1,Z,1500,,,,\n");
        assert!(matches!(&parsed[0], Parsed::Record { record: Record::Order { order, customer: None, .. }, .. }
            if order.total == 1500 && order.status == OrderStatus::Pending));
    }

    #[test]
    fn reads_customers_with_consent_and_traits() {
        let text = "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,\
                    Default Address City,Default Address Country Code,Phone,Accepts SMS Marketing,Total Spent,\
                    Total Orders,Note,Tax Exempt,Tags\n\
                    '7210448301122,Teo,Villa,teo@example.com,yes,Villa Ranch,Elko,US,'+17755550100,no,120.00,3,VIP note,no,\"vip, wholesale\"\n\
                    42,Bad,Email,not-an-email,no,,,,,,,,,,\n";
        let table = Table::open(text.as_bytes()).expect("header");
        assert!(is_customer_export(&table.columns));
        let parsed: Vec<Parsed> = customers(table).map(|p| p.expect("readable")).collect();
        let Parsed::Record { record: Record::Customer { input: c, tags }, .. } = &parsed[0] else {
            panic!("{parsed:?}")
        };
        let tags: Vec<&str> = tags.iter().flatten().map(String::as_str).collect();
        assert_eq!(tags, ["vip", "wholesale"]);
        assert_eq!(c.external_id.as_deref(), Some("7210448301122"));
        assert_eq!(c.phone.as_deref(), Some("+17755550100"));
        assert_eq!(c.marketing_consent, Some(true));
        let traits = Value::Object(c.traits.clone().unwrap_or_default());
        assert_eq!(traits["tags"], serde_json::json!(["vip", "wholesale"]));
        assert_eq!(traits["address"]["city"], "Elko");
        assert_eq!(traits["sms_consent"], false);
        assert!(matches!(&parsed[1], Parsed::Rejected(r) if r.row == 3 && r.reason.contains("email")));
    }
}
