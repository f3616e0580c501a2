//! Shops: tenants of one Patron host.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::customers::InvalidInput;
use super::{Db, StoreError, StoreResult, new_id, now_ms};
use crate::auth::{NewShopKeys, secret_hash};

/// A shop as the host sees it (never the secret itself).
#[derive(Debug, Clone, Serialize)]
pub struct Shop {
    pub id: i64,
    pub name: String,
    pub publishable_key: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub allowed_origins: Vec<String>,
    pub currency: String,
    pub timezone: String,
    pub locale: String,
    pub consent_required: bool,
    pub honor_dnt: bool,
    /// The secret key replaced by the last rotation, still accepted (for the API and
    /// customer tokens) until `previous_secret_until` (unix ms).
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    #[serde(skip)]
    pub previous_secret_until: Option<i64>,
    /// Raw events older than this many days are deleted nightly.
    pub event_retention_days: i64,
    /// Whether v1 customer tokens (no expiry, keyed with the secret key) still verify.
    pub v1_tokens: bool,
}

/// Raw events are kept 13 months unless the shop says otherwise.
pub const DEFAULT_EVENT_RETENTION_DAYS: i64 = 396;

impl Shop {
    /// The stored secret hashes that verify customer tokens now: the current key's,
    /// and during a rotation's grace period the previous key's.
    pub fn token_key_hashes(&self, now: i64) -> Vec<&str> {
        let mut hashes = vec![self.secret_hash.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret_hash, self.previous_secret_until)
            && now < until
        {
            hashes.push(previous.as_str());
        }
        hashes
    }
}

impl Shop {
    /// Checks a customer token against this shop's keys now; `token_secret` is the
    /// host's (see [`crate::auth::token_key`]).
    pub fn check_customer_token(
        &self,
        customer_external_id: &str,
        token: &str,
        token_secret: Option<&[u8]>,
    ) -> crate::auth::TokenCheck {
        let now = now_ms();
        let keys = crate::auth::TokenKeys::for_hashes(&self.token_key_hashes(now), token_secret, self.v1_tokens);
        crate::auth::check_customer_token(&keys, customer_external_id, token, now / 1000)
    }

    /// The key the store's back end signs v2 tokens with: the token key on a host with
    /// a token secret; `None` on one without (the secret key itself signs them).
    pub fn token_key(&self, token_secret: Option<&[u8]>) -> Option<String> {
        token_secret.map(|secret| crate::auth::token_key(secret, &self.secret_hash))
    }
}

/// What a merchant chooses when creating a shop.
#[derive(Debug, Clone)]
pub struct NewShop {
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub currency: String,
    pub timezone: String,
    pub locale: String,
    pub consent_required: bool,
    pub honor_dnt: bool,
}

impl NewShop {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            allowed_origins: Vec::new(),
            currency: "USD".into(),
            timezone: "UTC".into(),
            locale: "en".into(),
            consent_required: false,
            // GPC and DNT are honoured unless the merchant explicitly turns them off.
            honor_dnt: true,
        }
    }
}

/// What a merchant may change about a shop after creating it (`patron shop update`,
/// `PATCH /v1/shop`); a field left out stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopUpdate {
    /// Storefront origins allowed to call the browser API (replaces the list).
    #[serde(alias = "origins")]
    pub allowed_origins: Option<Vec<String>>,
    pub consent_required: Option<bool>,
    /// Whether Do Not Track and Global Privacy Control are honoured.
    pub honor_dnt: Option<bool>,
    /// ISO 4217 code; refused once the shop has recorded money (see [`Db::update_shop`]).
    pub currency: Option<String>,
    /// A language tag in a language Patron has text for (`en`, `zh-CN`, …).
    pub locale: Option<String>,
    /// An IANA time zone (`Europe/Paris`).
    #[serde(alias = "time_zone")]
    pub timezone: Option<String>,
}

/// Active ISO 4217 currency codes a shop can count in (funds, metals and test codes left out).
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Languages the storefront widget and the message templates have text in.
const LANGUAGES: &[&str] = &["en", "zh"];

/// `origin` as a storefront origin (`https://shop.example`, a port allowed, no path), or
/// `*` for any; a trailing slash is dropped.
pub fn check_origin(origin: &str) -> Result<String, InvalidInput> {
    let bad =
        || InvalidInput::new("allowed_origins", format!("`{origin}` is not an origin such as https://shop.example"));
    if origin == "*" {
        return Ok(origin.to_owned());
    }
    let url = reqwest::Url::parse(origin).map_err(|_| bad())?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && !origin.trim_end_matches('/').ends_with(':');
    if !bare || origin.trim_end_matches('/').matches('/').count() != 2 {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

/// `currency` (any case) as an upper-case ISO 4217 code.
pub fn check_currency(currency: &str) -> Result<String, InvalidInput> {
    let code = currency.trim().to_ascii_uppercase();
    if CURRENCIES.contains(&code.as_str()) {
        Ok(code)
    } else {
        Err(InvalidInput::new("currency", format!("`{currency}` is not an ISO 4217 currency code such as USD")))
    }
}

/// `locale` as a well-formed language tag in one of [`LANGUAGES`].
pub fn check_locale(locale: &str) -> Result<String, InvalidInput> {
    let mut parts = locale.split('-');
    let language = parts.next().unwrap_or_default();
    let well_formed = (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !well_formed {
        return Err(InvalidInput::new("locale", format!("`{locale}` is not a language tag such as en or zh-CN")));
    }
    if !LANGUAGES.contains(&language) {
        return Err(InvalidInput::new(
            "locale",
            format!("Patron has no text in `{locale}` yet: use an English (en…) or Chinese (zh…) locale"),
        ));
    }
    Ok(locale.to_owned())
}

/// `zone` as an IANA time zone name.
pub fn check_timezone(zone: &str) -> Result<String, InvalidInput> {
    zone.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| InvalidInput::new("timezone", format!("`{zone}` is not an IANA time zone such as Europe/Paris")))
}

impl ShopUpdate {
    /// The update with every field checked and normalised (currency upper case, origins
    /// without a trailing slash and deduplicated).
    pub fn validate(self) -> Result<Self, InvalidInput> {
        let allowed_origins = match self.allowed_origins {
            None => None,
            Some(origins) => {
                let mut checked: Vec<String> = Vec::with_capacity(origins.len());
                for origin in &origins {
                    let origin = check_origin(origin)?;
                    if !checked.contains(&origin) {
                        checked.push(origin);
                    }
                }
                Some(checked)
            }
        };
        Ok(Self {
            allowed_origins,
            consent_required: self.consent_required,
            honor_dnt: self.honor_dnt,
            currency: self.currency.as_deref().map(check_currency).transpose()?,
            locale: self.locale.as_deref().map(check_locale).transpose()?,
            timezone: self.timezone.as_deref().map(check_timezone).transpose()?,
        })
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

const SHOP_COLUMNS: &str = "id, name, publishable_key, secret_hash, allowed_origins, currency, timezone, \
     locale, consent_required, honor_dnt, previous_secret_hash, previous_secret_until, event_retention_days, v1_tokens";

fn shop_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Shop> {
    let origins: String = row.try_get("allowed_origins")?;
    Ok(Shop {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        publishable_key: row.try_get("publishable_key")?,
        secret_hash: row.try_get("secret_hash")?,
        allowed_origins: serde_json::from_str(&origins)
            .map_err(|e| super::StoreError::Corrupt(format!("shop allowed_origins: {e}")))?,
        currency: row.try_get("currency")?,
        timezone: row.try_get("timezone")?,
        locale: row.try_get("locale")?,
        consent_required: row.try_get::<i64, _>("consent_required")? != 0,
        honor_dnt: row.try_get::<i64, _>("honor_dnt")? != 0,
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_secret_until: row.try_get("previous_secret_until")?,
        event_retention_days: row.try_get("event_retention_days")?,
        v1_tokens: row.try_get::<i64, _>("v1_tokens")? != 0,
    })
}

impl Db {
    /// Creates a shop and returns it with its keys; the secret is not retrievable later.
    pub async fn create_shop(&self, new: &NewShop) -> StoreResult<(Shop, NewShopKeys)> {
        let keys = NewShopKeys::generate();
        let id = new_id();
        let origins = serde_json::to_string(&new.allowed_origins).unwrap_or_else(|_| "[]".into());
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO shops (id, name, publishable_key, secret_hash, allowed_origins, currency, \
             timezone, locale, consent_required, honor_dnt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(&new.name)
        .bind(&keys.publishable)
        .bind(secret_hash(&keys.secret))
        .bind(origins)
        .bind(&new.currency)
        .bind(&new.timezone)
        .bind(&new.locale)
        .bind(i64::from(new.consent_required))
        .bind(i64::from(new.honor_dnt))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        let shop = self.shop(id).await?.ok_or(super::StoreError::NotFound("shop"))?;
        Ok((shop, keys))
    }

    pub async fn shop(&self, id: i64) -> StoreResult<Option<Shop>> {
        let row = sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    pub async fn shop_by_publishable_key(&self, key: &str) -> StoreResult<Option<Shop>> {
        self.shop_where("publishable_key", key).await
    }

    /// The shop whose current secret key this is, or whose previous one during the
    /// grace period of a rotation.
    pub async fn shop_by_secret(&self, secret: &str) -> StoreResult<Option<Shop>> {
        let hash = secret_hash(secret);
        if let Some(shop) = self.shop_where("secret_hash", &hash).await? {
            return Ok(Some(shop));
        }
        let row = sqlx::query(&format!(
            "SELECT {SHOP_COLUMNS} FROM shops WHERE previous_secret_hash = $1 AND previous_secret_until > $2"
        ))
        .bind(&hash)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    /// Replaces a shop's secret key; the old one keeps working for `grace_ms`. Returns
    /// the new secret (shown once, never stored).
    pub async fn rotate_secret(&self, shop_id: i64, grace_ms: i64) -> StoreResult<String> {
        let secret = NewShopKeys::generate().secret;
        let mut w = self.write().await?;
        let updated = sqlx::query(
            "UPDATE shops SET previous_secret_hash = secret_hash, previous_secret_until = $3, secret_hash = $2              WHERE id = $1",
        )
        .bind(shop_id)
        .bind(secret_hash(&secret))
        .bind(now_ms().saturating_add(grace_ms.max(0)))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(super::StoreError::NotFound("shop"));
        }
        w.commit().await?;
        Ok(secret)
    }

    /// Turns v1 customer tokens (no expiry) on or off for a shop.
    pub async fn set_v1_tokens(&self, shop_id: i64, accept: bool) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE shops SET v1_tokens = $2 WHERE id = $1")
            .bind(shop_id)
            .bind(i64::from(accept))
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Sets how many days of raw events a shop keeps.
    pub async fn set_event_retention(&self, shop_id: i64, days: i64) -> StoreResult<()> {
        if !(1..=36_500).contains(&days) {
            return Err(super::customers::InvalidInput::new("event_retention_days", "must be 1 to 36500").into());
        }
        let mut w = self.write().await?;
        sqlx::query("UPDATE shops SET event_retention_days = $2 WHERE id = $1")
            .bind(shop_id)
            .bind(days)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// The shop whose text `column` (a constant of this module) equals `value`.
    async fn shop_where(&self, column: &'static str, value: &str) -> StoreResult<Option<Shop>> {
        let row = sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    pub async fn shops(&self) -> StoreResult<Vec<Shop>> {
        let rows =
            sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops ORDER BY name")).fetch_all(self.pool()).await?;
        rows.iter().map(shop_from_row).collect()
    }

    pub async fn shop_by_name(&self, name: &str) -> StoreResult<Option<Shop>> {
        self.shop_where("name", name).await
    }

    /// Applies a validated [`ShopUpdate`] and returns the shop as it now is.
    ///
    /// The currency changes only while the shop has recorded no money: amounts are
    /// stored in minor units of the shop's one currency and never converted, so a new
    /// code on existing orders, coupons or product prices would relabel every amount
    /// (EUR 12.00 becoming JPY 1,200). Such a change is refused as a conflict, naming what
    /// holds money; a merchant who changes currency starts a new shop.
    pub async fn update_shop(&self, shop_id: i64, update: &ShopUpdate) -> StoreResult<Shop> {
        let mut w = self.write().await?;
        let current: Option<String> =
            sqlx::query_scalar(&format!("SELECT currency FROM shops WHERE id = $1 {}", super::for_update(&w.tx)))
                .bind(shop_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        let current = current.ok_or(StoreError::NotFound("shop"))?;
        if let Some(currency) = update.currency.as_ref().filter(|c| **c != current) {
            for (table, what) in [("orders", "orders"), ("coupons", "coupons"), ("products", "product prices")] {
                let held: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE shop_id = $1 LIMIT 1) AS t"
                ))
                .bind(shop_id)
                .fetch_one(&mut *w.tx)
                .await?;
                if held > 0 {
                    return Err(StoreError::Conflict(format!(
                        "the shop already has {what} in {current}; Patron never converts amounts, so its currency \
                         cannot become {currency}: create a new shop for {currency}"
                    )));
                }
            }
        }
        let origins = update.allowed_origins.as_ref().map(|o| serde_json::to_string(o).unwrap_or_else(|_| "[]".into()));
        sqlx::query(
            "UPDATE shops SET allowed_origins = COALESCE($2, allowed_origins), currency = COALESCE($3, currency), \
             timezone = COALESCE($4, timezone), locale = COALESCE($5, locale), \
             consent_required = COALESCE($6, consent_required), honor_dnt = COALESCE($7, honor_dnt) WHERE id = $1",
        )
        .bind(shop_id)
        .bind(origins)
        .bind(update.currency.as_deref())
        .bind(update.timezone.as_deref())
        .bind(update.locale.as_deref())
        .bind(update.consent_required.map(i64::from))
        .bind(update.honor_dnt.map(i64::from))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        self.shop(shop_id).await?.ok_or(StoreError::NotFound("shop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_field_of_an_update() {
        assert_eq!(check_origin("https://shop.example/").expect("origin"), "https://shop.example");
        assert_eq!(check_origin("http://localhost:8080").expect("origin"), "http://localhost:8080");
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://a@shop.example",
            "https://shop.example?x=1",
            "https://",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
        assert_eq!(check_currency("eur").expect("currency"), "EUR");
        assert!(check_currency("EUX").is_err() && check_currency("XAU").is_err() && check_currency("US").is_err());
        assert!(check_locale("zh-CN").is_ok() && check_locale("en-GB").is_ok() && check_locale("zh-Hans-CN").is_ok());
        assert!(check_locale("fr").is_err() && check_locale("EN").is_err() && check_locale("en_US").is_err());
        assert_eq!(check_timezone("Asia/Shanghai").expect("zone"), "Asia/Shanghai");
        assert!(check_timezone("Mars/Olympus").is_err() && check_timezone("+08:00").is_err());
        let update = ShopUpdate {
            allowed_origins: Some(vec!["https://a.example/".into(), "https://a.example".into()]),
            ..ShopUpdate::default()
        };
        assert_eq!(update.validate().expect("valid").allowed_origins, Some(vec!["https://a.example".to_owned()]));
        assert!(ShopUpdate::default().is_empty());
    }
}
