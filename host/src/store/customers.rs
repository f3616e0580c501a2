//! Customers, their identity resolution and the purchase stats every plugin reads.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::merges::MergeReason;
use super::recommendations::placeholders;
use super::{Backend, Db, StoreError, StoreResult, new_id, now_ms};

/// What the store's back end (or an import) says about a customer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(alias = "id")]
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`, or `--MM-DD` when the year is unknown.
    pub birthday: Option<String>,
    pub marketing_consent: Option<bool>,
    pub traits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Unix milliseconds; defaults to the time of the first upsert.
    pub created_at: Option<i64>,
}

/// Purchase statistics, derived from the shop's orders.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CustomerStats {
    pub order_count: i64,
    pub total_spent: i64,
    pub first_order_at: Option<i64>,
    pub last_order_at: Option<i64>,
    pub average_order_value: i64,
}

/// A stored customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Customer {
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthday: Option<String>,
    pub marketing_consent: bool,
    pub traits: serde_json::Value,
    pub created_at: i64,
    pub stats: CustomerStats,
}

/// Whether an upsert created, changed or left a record as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// Input that fails validation, with a reason fit for the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    /// The error code clients see; `invalid_field` unless a rule has its own.
    pub code: &'static str,
    pub field: &'static str,
    pub reason: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self::coded("invalid_field", field, reason)
    }

    pub fn coded(code: &'static str, field: &'static str, reason: impl Into<String>) -> Self {
        Self { code, field, reason: reason.into() }
    }
}

impl CustomerInput {
    /// Normalises emails and checks field formats.
    pub fn validate(mut self) -> Result<Self, InvalidInput> {
        self.external_id = non_empty(self.external_id);
        self.email = non_empty(self.email).map(|e| e.to_lowercase());
        self.phone = non_empty(self.phone).map(|p| normalize_phone(&p).unwrap_or(p));
        self.first_name = non_empty(self.first_name);
        self.last_name = non_empty(self.last_name);
        self.birthday = non_empty(self.birthday);
        if self.external_id.is_none() && self.email.is_none() {
            return Err(InvalidInput::new("external_id", "a customer needs an external_id or an email"));
        }
        if let Some(email) = &self.email {
            let valid = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
            });
            if !valid {
                return Err(InvalidInput::new("email", format!("`{email}` is not an email address")));
            }
        }
        if let Some(birthday) = &self.birthday
            && !is_valid_birthday(birthday)
        {
            return Err(InvalidInput::new("birthday", format!("`{birthday}` is not YYYY-MM-DD or --MM-DD")));
        }
        if self.created_at.is_some_and(|at| !crate::timestamp::in_range(at)) {
            return Err(InvalidInput::new("created_at", "must be unix milliseconds between 1970 and 9999"));
        }
        for (field, value) in [("external_id", &self.external_id), ("email", &self.email)] {
            if value.as_ref().is_some_and(|v| v.len() > 255) {
                return Err(InvalidInput::new(field, "longer than 255 characters"));
            }
        }
        Ok(self)
    }
}

/// A phone number in E.164 (`+` and 8 to 15 digits), from one written with a leading
/// `+` or `00` and any spaces, dots, dashes or parentheses; `None` for anything else.
/// Numbers without a country code are kept as given but never used to match people:
/// guessing the country from the shop would link strangers across borders.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let rest = trimmed.strip_prefix('+').or_else(|| trimmed.strip_prefix("00"))?;
    let mut digits = String::with_capacity(16);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    ((8..=15).contains(&digits.len()) && !digits.starts_with('0')).then(|| format!("+{digits}"))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn is_valid_birthday(value: &str) -> bool {
    if let Some(month_day) = value.strip_prefix("--") {
        return chrono::NaiveDate::parse_from_str(&format!("2000-{month_day}"), "%Y-%m-%d").is_ok();
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

const CUSTOMER_COLUMNS: &str = "id, external_id, email, phone, first_name, last_name, birthday, \
     marketing_consent, traits, created_at, order_count, total_spent, first_order_at, last_order_at";

fn customer_from_row(row: &AnyRow) -> StoreResult<Customer> {
    let traits: String = row.try_get("traits")?;
    let order_count: i64 = row.try_get("order_count")?;
    let total_spent: i64 = row.try_get("total_spent")?;
    Ok(Customer {
        id: row.try_get("id")?,
        external_id: row.try_get("external_id")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        birthday: row.try_get("birthday")?,
        marketing_consent: row.try_get::<i64, _>("marketing_consent")? != 0,
        traits: serde_json::from_str(&traits).map_err(|e| StoreError::Corrupt(format!("customer traits: {e}")))?,
        created_at: row.try_get("created_at")?,
        stats: CustomerStats {
            order_count,
            total_spent,
            first_order_at: row.try_get("first_order_at")?,
            last_order_at: row.try_get("last_order_at")?,
            average_order_value: if order_count > 0 { total_spent / order_count } else { 0 },
        },
    })
}

pub(crate) async fn customer_by_id(conn: &mut AnyConnection, shop_id: i64, id: i64) -> StoreResult<Option<Customer>> {
    let row = sqlx::query(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE shop_id = $1 AND id = $2"))
        .bind(shop_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(customer_from_row).transpose()
}

/// The customers with these ids, in id order; on PostgreSQL locked until the
/// transaction ends (always in id order, so two lockers never wait on each other in a cycle).
pub(crate) async fn lock_customers(
    conn: &mut AnyConnection,
    backend: Backend,
    shop_id: i64,
    ids: &[i64],
) -> StoreResult<Vec<Customer>> {
    let lock = if backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let mut customers = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1_000) {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE shop_id = $1 AND id IN ({}) ORDER BY id{lock}",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(shop_id);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            customers.push(customer_from_row(&row)?);
        }
    }
    Ok(customers)
}

/// The customer an external id stands for (the survivor, if its record was merged),
/// locked until the transaction ends so a concurrent merge is waited for.
async fn customer_id_by_external(
    conn: &mut AnyConnection,
    shop_id: i64,
    external_id: &str,
) -> StoreResult<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM customers WHERE shop_id = $1 AND external_id = $2")
        .bind(shop_id)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
    match id {
        Some(id) => Ok(Some(super::merges::resolve_locked(conn, shop_id, id).await?)),
        None => Ok(None),
    }
}

/// The customer an email or phone identity points to (identities move with merges),
/// locked like [`customer_id_by_external`].
async fn customer_id_by_identity(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    value: &str,
) -> StoreResult<Option<i64>> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = $2 AND value = $3")
            .bind(shop_id)
            .bind(kind)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await?;
    match id {
        Some(id) => Ok(Some(super::merges::resolve_locked(conn, shop_id, id).await?)),
        None => Ok(None),
    }
}

async fn external_id_of(conn: &mut AnyConnection, shop_id: i64, id: i64) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT external_id FROM customers WHERE shop_id = $1 AND id = $2")
        .bind(shop_id)
        .bind(id)
        .fetch_one(conn)
        .await?)
}

/// Upserts a customer inside a transaction: matched by external id, then by email, then
/// by E.164 phone. The store's back end and imports are trusted, so an email or phone
/// they send is a verified identifier: a record known so far only by that identifier
/// (no external id) is the same person and is merged into the one with the external id.
/// An identifier held by a different known customer is not evidence of one person.
pub(crate) async fn upsert_customer(
    conn: &mut AnyConnection,
    shop_id: i64,
    input: &CustomerInput,
) -> StoreResult<(i64, Upserted)> {
    upsert_customer_from(conn, shop_id, input, super::consent::Source::Backend).await
}

/// [`upsert_customer`], naming where a marketing-consent statement in `input` came from.
pub(crate) async fn upsert_customer_from(
    conn: &mut AnyConnection,
    shop_id: i64,
    input: &CustomerInput,
    source: super::consent::Source,
) -> StoreResult<(i64, Upserted)> {
    let (id, outcome) = upsert_matched(conn, shop_id, input).await?;
    if let Some(marketing) = input.marketing_consent
        && outcome != Upserted::Unchanged
    {
        let current = super::consent::state(conn, shop_id, &super::consent::Subject::Customer(id)).await?;
        if current.marketing != Some(marketing) {
            let statement =
                super::consent::Statement { tracking: None, marketing: Some(marketing), source, text_version: None };
            super::consent::record(conn, shop_id, &super::consent::Subject::Customer(id), &statement).await?;
        }
    }
    Ok((id, outcome))
}

async fn upsert_matched(conn: &mut AnyConnection, shop_id: i64, input: &CustomerInput) -> StoreResult<(i64, Upserted)> {
    let by_external = match &input.external_id {
        Some(ext) => customer_id_by_external(conn, shop_id, ext).await?,
        None => None,
    };
    let mut by_identity = None;
    let phone = input.phone.as_deref().and_then(normalize_phone);
    for (kind, value, reason) in
        [("email", input.email.clone(), MergeReason::Email), ("phone", phone, MergeReason::Phone)]
    {
        if by_identity.is_some() {
            break;
        }
        if let Some(value) = value
            && let Some(id) = customer_id_by_identity(conn, shop_id, kind, &value).await?
            && Some(id) != by_external
        {
            by_identity = Some((id, reason));
        }
    }
    let existing = match (by_external, by_identity) {
        (Some(a), Some((b, reason))) => {
            if external_id_of(conn, shop_id, b).await?.is_none() {
                super::merges::merge(conn, shop_id, a, b, reason).await?;
            }
            Some(a)
        }
        (Some(a), None) => Some(a),
        (None, Some((b, _))) => {
            // An identifier owned by a different known customer is not evidence of one person.
            (external_id_of(conn, shop_id, b).await?.is_none() || input.external_id.is_none()).then_some(b)
        }
        (None, None) => None,
    };
    let now = now_ms();
    let id = match existing {
        None => {
            let id = new_id();
            let traits = input.traits.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO customers (shop_id, id, external_id, email, phone, first_name, last_name, \
                 birthday, marketing_consent, traits, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(shop_id)
            .bind(id)
            .bind(&input.external_id)
            .bind(&input.email)
            .bind(&input.phone)
            .bind(&input.first_name)
            .bind(&input.last_name)
            .bind(&input.birthday)
            .bind(i64::from(input.marketing_consent.unwrap_or(false)))
            .bind(serde_json::Value::Object(traits).to_string())
            .bind(input.created_at.unwrap_or(now))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            record_contact_identities(conn, shop_id, id, input).await?;
            return Ok((id, Upserted::Created));
        }
        Some(id) => id,
    };
    let current = customer_by_id(conn, shop_id, id).await?.ok_or(StoreError::NotFound("customer"))?;
    let mut traits = current.traits.as_object().cloned().unwrap_or_default();
    if let Some(new_traits) = &input.traits {
        traits.extend(new_traits.clone());
    }
    let merged = Customer {
        // A record keeps the external id it has: an upsert naming a merged-away id
        // resolved to its survivor, whose own id stays.
        external_id: current.external_id.clone().or(input.external_id.clone()),
        email: input.email.clone().or(current.email.clone()),
        phone: input.phone.clone().or(current.phone.clone()),
        first_name: input.first_name.clone().or(current.first_name.clone()),
        last_name: input.last_name.clone().or(current.last_name.clone()),
        birthday: input.birthday.clone().or(current.birthday.clone()),
        marketing_consent: input.marketing_consent.unwrap_or(current.marketing_consent),
        traits: serde_json::Value::Object(traits),
        created_at: input.created_at.map_or(current.created_at, |t| t.min(current.created_at)),
        ..current.clone()
    };
    let unchanged = merged.external_id == current.external_id
        && merged.email == current.email
        && merged.phone == current.phone
        && merged.first_name == current.first_name
        && merged.last_name == current.last_name
        && merged.birthday == current.birthday
        && merged.marketing_consent == current.marketing_consent
        && merged.traits == current.traits
        && merged.created_at == current.created_at;
    if unchanged {
        return Ok((id, Upserted::Unchanged));
    }
    sqlx::query(
        "UPDATE customers SET external_id = $3, email = $4, phone = $5, first_name = $6, last_name = $7, \
         birthday = $8, marketing_consent = $9, traits = $10, created_at = $11, updated_at = $12 \
         WHERE shop_id = $1 AND id = $2",
    )
    .bind(shop_id)
    .bind(id)
    .bind(&merged.external_id)
    .bind(&merged.email)
    .bind(&merged.phone)
    .bind(&merged.first_name)
    .bind(&merged.last_name)
    .bind(&merged.birthday)
    .bind(i64::from(merged.marketing_consent))
    .bind(merged.traits.to_string())
    .bind(merged.created_at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    record_contact_identities(conn, shop_id, id, input).await?;
    Ok((id, Upserted::Updated))
}

async fn record_contact_identities(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    input: &CustomerInput,
) -> StoreResult<()> {
    let phone = input.phone.as_deref().and_then(normalize_phone);
    for (kind, value) in [("email", input.email.as_deref()), ("phone", phone.as_deref())] {
        if let Some(value) = value {
            super::identities::link(conn, shop_id, kind, value, customer_id).await?;
        }
    }
    Ok(())
}

/// Recomputes a customer's stats from their orders. Pending, cancelled and fully
/// refunded orders do not count as purchases; partial refunds reduce the amount spent.
/// The customer row is locked first, so concurrent orders of one customer (PostgreSQL)
/// each see the other's committed order. The sum is checked: a lifetime spend beyond
/// `i64` refuses the order that would cause it, and the customer stays as they were.
pub(crate) async fn refresh_stats(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<()> {
    sqlx::query(&format!("SELECT id FROM customers WHERE shop_id = $1 AND id = $2 {}", super::for_update(conn)))
        .bind(shop_id)
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await?;
    let purchases: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT total - refunded, placed_at FROM orders WHERE shop_id = $1 AND customer_id = $2 \
         AND status IN ('paid', 'fulfilled')",
    )
    .bind(shop_id)
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut total_spent: i64 = 0;
    for (net, _) in &purchases {
        total_spent = total_spent.checked_add(*net).ok_or_else(|| {
            InvalidInput::new("total", "the customer's total spend would exceed what Patron can count")
        })?;
    }
    let order_count = i64::try_from(purchases.len()).unwrap_or(i64::MAX);
    let first_order_at = purchases.iter().map(|(_, at)| *at).min();
    let last_order_at = purchases.iter().map(|(_, at)| *at).max();
    sqlx::query(
        "UPDATE customers SET order_count = $3, total_spent = $4, first_order_at = $5, last_order_at = $6, \
         updated_at = $7 WHERE shop_id = $1 AND id = $2",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(order_count)
    .bind(total_spent)
    .bind(first_order_at)
    .bind(last_order_at)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    super::rollups::refresh_customer(conn, shop_id, customer_id).await
}

/// One page of a shop's customers, in id order.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    #[serde(serialize_with = "crate::api::ids::option_string")]
    pub next_after: Option<i64>,
}

impl Db {
    /// Stores a customer; a transaction that lost a race with a concurrent first post of
    /// the same customer runs again and finds the winner's row.
    pub async fn upsert_customer(&self, shop_id: i64, input: &CustomerInput) -> StoreResult<(Customer, Upserted)> {
        super::retrying(super::WRITE_ATTEMPTS, || self.try_upsert_customer(shop_id, input)).await
    }

    async fn try_upsert_customer(&self, shop_id: i64, input: &CustomerInput) -> StoreResult<(Customer, Upserted)> {
        let mut w = self.write().await?;
        let (id, outcome) = upsert_customer(&mut w.tx, shop_id, input).await?;
        let customer = customer_by_id(&mut w.tx, shop_id, id).await?.ok_or(StoreError::NotFound("customer"))?;
        if outcome == Upserted::Created {
            crate::journeys::triggers::customer_created(&mut w.tx, shop_id, id, now_ms()).await?;
        }
        w.commit().await?;
        Ok((customer, outcome))
    }

    /// The customer an external id stands for: the survivor, if that record was merged.
    pub async fn customer_by_external_id(&self, shop_id: i64, external_id: &str) -> StoreResult<Option<Customer>> {
        let mut conn = self.pool().acquire().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT COALESCE(merged_into, id) FROM customers WHERE shop_id = $1 AND external_id = $2",
        )
        .bind(shop_id)
        .bind(external_id)
        .fetch_optional(&mut *conn)
        .await?;
        match id {
            Some(id) => customer_by_id(&mut conn, shop_id, id).await,
            None => Ok(None),
        }
    }

    pub async fn customer(&self, shop_id: i64, id: i64) -> StoreResult<Option<Customer>> {
        let mut conn = self.pool().acquire().await?;
        customer_by_id(&mut conn, shop_id, id).await
    }

    /// The customer an email or phone identifies now (phones in any E.164 spelling).
    pub async fn customer_by_contact(&self, shop_id: i64, kind: &str, value: &str) -> StoreResult<Option<Customer>> {
        let value = match kind {
            "email" => value.trim().to_lowercase(),
            "phone" => normalize_phone(value).unwrap_or_else(|| value.trim().to_owned()),
            _ => value.to_owned(),
        };
        let mut conn = self.pool().acquire().await?;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = $2 AND value = $3")
                .bind(shop_id)
                .bind(kind)
                .bind(&value)
                .fetch_optional(&mut *conn)
                .await?;
        match id {
            Some(id) => customer_by_id(&mut conn, shop_id, id).await,
            None => Ok(None),
        }
    }

    /// Customers after `after` (exclusive) in id order, skipping merged records.
    pub async fn customers_page(&self, shop_id: i64, after: Option<i64>, limit: i64) -> StoreResult<CustomerPage> {
        let rows = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE shop_id = $1 AND id > $2 AND merged_into IS NULL \
             ORDER BY id LIMIT $3"
        ))
        .bind(shop_id)
        .bind(after.unwrap_or(-1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let customers = rows.iter().map(customer_from_row).collect::<StoreResult<Vec<_>>>()?;
        let next_after = (customers.len() as i64 == limit).then(|| customers.last().map(|c| c.id)).flatten();
        Ok(CustomerPage { customers, next_after })
    }

    /// The customer who has spent the most (the demo storefront signs in as them).
    pub async fn best_customer(&self, shop_id: i64) -> StoreResult<Option<Customer>> {
        let row = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE shop_id = $1 AND merged_into IS NULL \
             AND external_id IS NOT NULL ORDER BY total_spent DESC, id LIMIT 1"
        ))
        .bind(shop_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(customer_from_row).transpose()
    }

    /// The customers with these ids, in id order (merged records excluded).
    pub async fn customers_by_ids(&self, shop_id: i64, ids: &[i64]) -> StoreResult<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE shop_id = $1 AND merged_into IS NULL AND id IN ({}) ORDER BY id",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(&sql).bind(shop_id);
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(self.pool()).await?.iter().map(customer_from_row).collect()
    }

    pub async fn count_customers(&self, shop_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND merged_into IS NULL")
            .bind(shop_id)
            .fetch_one(self.pool())
            .await?)
    }
}
