//! A chunk of imported orders through the bulk path: a few multi-row statements in the
//! chunk's transaction instead of a dozen statements per order, writing exactly the rows
//! the per-order upsert writes.
//!
//! The common case of an export — a new order whose customer is named by email only (or
//! not at all), or an order stored already exactly as the file has it — goes in bulk:
//! the chunk's stored orders and email owners are read in one statement each; new
//! customers, their email identities, new orders, their lines and their refunds are
//! inserted many rows per statement; the stats of the customers touched are refreshed
//! set-based. Anything else (an order the file changes, a customer with more than an
//! email, an order repeated within the chunk) goes through the per-order upsert after
//! the bulk part, in the same transaction, so outcomes do not depend on the path.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::AnyConnection;

use super::Record;
use crate::store::StoreError;
use crate::store::bulk::{
    LineRow, NewCustomer, NewIdentity, NewRefund, OrderAt, email_owners, insert_many, orders_by_ids, refresh_stats_of,
};
use crate::store::customers::{CustomerInput, Upserted};
use crate::store::orders::{Order, OrderStatus, PLACED_AT_UNSET};
use crate::store::shops::Shop;
use crate::store::{new_id, now_ms};

/// Whether a customer input says nothing but an email: one the bulk path can resolve.
fn email_only(input: &CustomerInput) -> Option<&str> {
    let email = input.email.as_deref()?;
    let bare = CustomerInput { email: input.email.clone(), ..CustomerInput::default() };
    (*input == bare).then_some(email)
}

/// Applies a chunk of order records (all [`Record::Order`]) in the transaction `conn`;
/// returns each record's outcome, in order.
pub(super) async fn apply_orders(
    conn: &mut AnyConnection,
    shop: &Shop,
    records: &[(u64, Record)],
) -> Result<Vec<Upserted>, StoreError> {
    let now = now_ms();
    let mut outcomes: Vec<Option<Upserted>> = vec![None; records.len()];
    // Records the bulk path may take: the first of each order id, with no customer or
    // an email-only one.
    let mut orders = Vec::with_capacity(records.len());
    for (_, record) in records {
        let Record::Order { order, customer, refunded } = record else {
            return Err(StoreError::Conflict("a bulk order chunk holds only orders".into()));
        };
        orders.push((order, customer.as_ref(), *refunded));
    }
    let mut seen = HashSet::new();
    let mut fast = Vec::with_capacity(records.len());
    for (i, (order, customer, _)) in orders.iter().enumerate() {
        let simple = customer.is_none_or(|c| email_only(c).is_some());
        if seen.insert(order.id.as_str()) && simple {
            fast.push(i);
        }
    }
    let ids: Vec<&str> = fast.iter().map(|&i| orders[i].0.id.as_str()).collect();
    let stored = orders_by_ids(conn, shop.id, &ids).await?;
    let emails: Vec<&str> =
        fast.iter().filter_map(|&i| orders[i].1.and_then(email_only)).collect::<BTreeSet<_>>().into_iter().collect();
    let owners = email_owners(conn, shop.id, &emails).await?;

    let mut new_customers: HashMap<&str, i64> = HashMap::new();
    let mut customer_rows = Vec::new();
    let mut identity_rows = Vec::new();
    let mut new_orders: Vec<Order> = Vec::new();
    let mut refunds = Vec::new();
    let mut touched = BTreeSet::new();
    for &i in &fast {
        let (order, customer, refunded) = orders[i];
        let mut order = order.clone();
        let customer_id = match customer.and_then(email_only) {
            None => None,
            Some(email) => match owners.get(email) {
                // The per-order upsert would rewrite this customer's email: not bulk.
                Some((_, held)) if held.as_deref() != Some(email) => continue,
                Some((id, _)) => Some(*id),
                None => Some(*new_customers.entry(email).or_insert_with(|| {
                    let id = new_id();
                    let input = CustomerInput { email: Some(email.to_owned()), ..CustomerInput::default() };
                    customer_rows.push(NewCustomer { id, input });
                    identity_rows.push(NewIdentity {
                        kind: "email",
                        value: email.to_owned(),
                        customer_id: id,
                        created_at: now,
                    });
                    id
                })),
            },
        };
        if customer_id.is_some() {
            order.customer_id = customer_id;
        }
        match stored.get(&order.id) {
            Some(current) => {
                // As the per-order upsert compares: what a re-post keeps of the stored order.
                if order.placed_at == PLACED_AT_UNSET {
                    order.placed_at = current.placed_at;
                }
                if order.total < current.refunded {
                    continue;
                }
                order.refunded = current.refunded;
                if current.status == OrderStatus::Refunded && order.status.is_purchase() {
                    order.status = OrderStatus::Refunded;
                }
                if order.customer_id.is_none() {
                    order.customer_id = current.customer_id;
                }
                if *current == order && refunded <= current.refunded {
                    outcomes[i] = Some(Upserted::Unchanged);
                }
            }
            None => {
                if order.placed_at == PLACED_AT_UNSET {
                    order.placed_at = now;
                }
                if refunded > 0 {
                    refunds.push(NewRefund {
                        id: format!("import:{}:{refunded}", order.id),
                        order_id: order.id.clone(),
                        amount: refunded,
                        reason: Some("imported".into()),
                        created_at: now,
                    });
                    order.refunded = refunded;
                    if refunded >= order.total && order.status.is_purchase() {
                        order.status = OrderStatus::Refunded;
                    }
                }
                touched.extend(order.customer_id);
                new_orders.push(order);
                outcomes[i] = Some(Upserted::Created);
            }
        }
    }

    // A row that is already there was written by someone else meanwhile: the chunk is
    // redone order by order (a conflict is a record error).
    let expect = |what: &str, inserted: u64, wanted: usize| {
        if inserted == wanted as u64 {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!("{what} were written concurrently; retrying record by record")))
        }
    };
    expect("customers", insert_many(conn, shop.id, &customer_rows).await?, customer_rows.len())?;
    expect("identities", insert_many(conn, shop.id, &identity_rows).await?, identity_rows.len())?;
    let order_rows: Vec<OrderAt<'_>> = new_orders.iter().map(|order| OrderAt { order, updated_at: now }).collect();
    expect("orders", insert_many(conn, shop.id, &order_rows).await?, order_rows.len())?;
    insert_many(conn, shop.id, &LineRow::of(&new_orders)).await?;
    expect("refunds", insert_many(conn, shop.id, &refunds).await?, refunds.len())?;
    let touched: Vec<i64> = touched.into_iter().collect();
    refresh_stats_of(conn, shop.id, &touched).await?;

    // The rest, one by one, after the bulk part (so a repeated order finds its first).
    for (i, outcome) in outcomes.iter_mut().enumerate() {
        if outcome.is_none() {
            *outcome = Some(super::apply_record(conn, shop, &records[i].1).await?);
        }
    }
    // The shop's days last, as every order write does (the rows most writers share).
    crate::store::rollups::orders_added(conn, shop.id, &new_orders).await?;
    Ok(outcomes.into_iter().map(|o| o.unwrap_or(Upserted::Unchanged)).collect())
}
