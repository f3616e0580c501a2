//! Finding customers by what a merchant knows of them: an email (or part of one), a
//! name, the store's external id, or a phone number (digits, however it was written).
//! One function, shared by `GET /v1/customers` and the console.

use serde::Serialize;

use super::customers::Customer;
use super::{Db, StoreResult};

/// Fewest digits in a query for it to be matched against phone numbers.
const MIN_PHONE_DIGITS: usize = 4;

/// One page of matching customers in id order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerSearch {
    pub customers: Vec<Customer>,
    /// Pass as `cursor` for the next page; null on the last.
    #[serde(serialize_with = "crate::api::ids::option_string")]
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<i64>,
}

/// `%text%` for LIKE, with LIKE's own wildcards in `text` escaped (escape character `\`).
fn contains_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// SQL stripping the usual separators from the phone column, for digit matching.
const PHONE_DIGITS: &str = "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(COALESCE(c.phone, ''), ' ', ''), '-', ''), \
     '(', ''), ')', ''), '.', ''), '+', '')";

impl Db {
    /// Customers (merged records excluded) after id `cursor` matching `query`, at most
    /// `limit`: every customer when the query is blank; otherwise those whose external id
    /// equals it, whose email or full name contains it (ignoring case), or — when it
    /// holds at least four digits — whose phone contains those digits.
    pub async fn search_customers(
        &self,
        shop_id: i64,
        query: &str,
        cursor: Option<i64>,
        limit: i64,
    ) -> StoreResult<CustomerSearch> {
        let query = query.trim();
        let ids: Vec<i64> = if query.is_empty() {
            sqlx::query_scalar(
                "SELECT c.id FROM customers c WHERE c.shop_id = $1 AND c.merged_into IS NULL AND c.id > $2 \
                 ORDER BY c.id LIMIT $3",
            )
            .bind(shop_id)
            .bind(cursor.unwrap_or(-1))
            .bind(limit + 1)
            .fetch_all(self.pool())
            .await?
        } else {
            let digits: String = query.chars().filter(char::is_ascii_digit).collect();
            let phone = (digits.len() >= MIN_PHONE_DIGITS).then(|| contains_pattern(&digits));
            let text = contains_pattern(&query.to_lowercase());
            sqlx::query_scalar(&format!(
                "SELECT c.id FROM customers c WHERE c.shop_id = $1 AND c.merged_into IS NULL AND c.id > $2 AND ( \
                     c.external_id = $3 \
                     OR LOWER(COALESCE(c.email, '')) LIKE $4 ESCAPE '\\' \
                     OR LOWER(COALESCE(c.first_name, '') || ' ' || COALESCE(c.last_name, '')) LIKE $4 ESCAPE '\\' \
                     OR ($5 IS NOT NULL AND {PHONE_DIGITS} LIKE $5 ESCAPE '\\')) \
                 ORDER BY c.id LIMIT $6"
            ))
            .bind(shop_id)
            .bind(cursor.unwrap_or(-1))
            .bind(query)
            .bind(text)
            .bind(phone)
            .bind(limit + 1)
            .fetch_all(self.pool())
            .await?
        };
        let more = i64::try_from(ids.len()).unwrap_or(i64::MAX) > limit;
        let page: Vec<i64> = ids.into_iter().take(usize::try_from(limit).unwrap_or(0)).collect();
        let next_cursor = if more { page.last().copied() } else { None };
        let customers = self.customers_by_ids(shop_id, &page).await?;
        Ok(CustomerSearch { customers, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_queries_are_literal() {
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
