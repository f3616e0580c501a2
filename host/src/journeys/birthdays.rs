//! `customer.birthday`: a daily job per shop, due at local midnight in the shop's time
//! zone, queues one trigger per listening install for each customer whose birthday is
//! that local date. The job and each trigger carry dedup keys naming the date, so a
//! day checked twice (another replica, a retried job) queues nothing new.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::Row;

use super::{listeners, triggers};
use crate::store::shops::Shop;
use crate::store::{Db, StoreError, StoreResult};

/// The job kind of a shop's daily birthday check; its payload is `{"date": "YYYY-MM-DD"}`.
pub const BIRTHDAY_JOB: &str = "journeys.birthdays";
/// The host trigger a birthday raises.
pub const BIRTHDAY_TRIGGER: &str = "customer.birthday";

/// The shop's zone; a stored name chrono-tz does not know counts as UTC, as in delivery.
pub fn shop_zone(shop: &Shop) -> Tz {
    shop.timezone.parse().unwrap_or(Tz::UTC)
}

/// The unix ms at which `date` begins in `zone` (the first existing hour when a DST gap
/// swallows midnight).
pub fn local_midnight(zone: Tz, date: NaiveDate) -> Option<i64> {
    (0..4).find_map(|hour| {
        let start = date.and_hms_opt(hour, 0, 0)?;
        zone.from_local_datetime(&start).earliest().map(|at| at.timestamp_millis())
    })
}

/// The local date at `at` (unix ms) in `zone`.
pub fn local_date(zone: Tz, at: i64) -> Option<NaiveDate> {
    Some(Utc.timestamp_millis_opt(at).single()?.with_timezone(&zone).date_naive())
}

/// The `-MM-DD` endings of the birthdays celebrated on `date`: a Feb 29 birthday is
/// celebrated on Feb 28 when the year has no Feb 29.
fn celebrated_on(date: NaiveDate) -> Vec<String> {
    let mut endings = vec![format!("-{:02}-{:02}", date.month(), date.day())];
    if date.month() == 2 && date.day() == 28 && NaiveDate::from_ymd_opt(date.year(), 2, 29).is_none() {
        endings.push("-02-29".into());
    }
    endings
}

/// The `MM-DD` of a stored birthday (`YYYY-MM-DD` or `--MM-DD`).
fn month_day(birthday: &str) -> Option<&str> {
    match birthday.strip_prefix("--") {
        Some(month_day) => Some(month_day),
        None if birthday.len() == 10 && birthday.as_bytes()[4] == b'-' => birthday.get(5..),
        None => None,
    }
}

/// Whether a stored birthday is celebrated on `date`.
pub fn is_birthday(birthday: &str, date: NaiveDate) -> bool {
    month_day(birthday).is_some_and(|md| celebrated_on(date).iter().any(|ending| ending[1..] == *md))
}

/// Queues the shop's birthday check of the first local day that begins after `after`
/// (unix ms); a check already queued for that day is not queued again.
pub async fn queue_next(db: &Db, shop: &Shop, after: i64) -> StoreResult<()> {
    let zone = shop_zone(shop);
    let today = local_date(zone, after).ok_or_else(|| StoreError::Corrupt(format!("time {after} out of range")))?;
    let Some(next) = today.succ_opt() else { return Ok(()) };
    queue_day(db, shop, next).await
}

/// Queues the shop's birthday check of `date`, due at its local midnight.
pub async fn queue_day(db: &Db, shop: &Shop, date: NaiveDate) -> StoreResult<()> {
    let Some(at) = local_midnight(shop_zone(shop), date) else { return Ok(()) };
    let payload = serde_json::json!({"date": date.to_string()});
    db.enqueue_job(shop.id, BIRTHDAY_JOB, &payload, at, &format!("{BIRTHDAY_JOB}:{date}")).await?;
    Ok(())
}

/// The date a birthday check's payload names.
pub fn job_date(payload: &serde_json::Value) -> StoreResult<NaiveDate> {
    payload["date"]
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| StoreError::Corrupt(format!("birthday job payload {payload}")))
}

/// Queues `customer.birthday` for each customer celebrated on `date`, for each listening
/// install, at `at` (unix ms); returns how many customers. Idempotent per date. The
/// customers are read before the write transaction, so a scan of a large shop does not
/// hold SQLite's writer.
pub async fn queue_triggers(db: &Db, shop: &Shop, date: NaiveDate, at: i64) -> StoreResult<usize> {
    let mut conn = db.pool().acquire().await?;
    let plugins = listeners::listening(&mut conn, shop.id, BIRTHDAY_TRIGGER).await?;
    if plugins.is_empty() {
        return Ok(0);
    }
    let mut celebrated = Vec::new();
    for ending in celebrated_on(date) {
        let rows = sqlx::query("SELECT id, birthday FROM customers WHERE shop_id = $1 AND birthday LIKE $2")
            .bind(shop.id)
            .bind(format!("%{ending}"))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let birthday: String = row.try_get("birthday")?;
            if is_birthday(&birthday, date) {
                celebrated.push(row.try_get::<i64, _>("id")?);
            }
        }
    }
    drop(conn);
    if celebrated.is_empty() {
        return Ok(0);
    }
    let mut w = db.write().await?;
    for customer_id in &celebrated {
        triggers::customer_birthday(&mut w.tx, shop.id, &plugins, *customer_id, date, at).await?;
    }
    w.commit().await?;
    Ok(celebrated.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn a_birthday_is_its_month_and_day_in_either_stored_form() {
        assert!(is_birthday("1990-03-11", date("2026-03-11")));
        assert!(is_birthday("--03-11", date("2026-03-11")));
        assert!(!is_birthday("1990-03-12", date("2026-03-11")));
        assert!(!is_birthday("--03-12", date("2026-03-11")));
        assert!(!is_birthday("1990-11-03", date("2026-03-11")));
        assert!(!is_birthday("03-11", date("2026-03-11")), "not a stored form");
    }

    #[test]
    fn feb_29_is_celebrated_on_feb_28_in_years_without_it() {
        assert!(is_birthday("2000-02-29", date("2027-02-28")));
        assert!(is_birthday("--02-29", date("2027-02-28")));
        assert!(is_birthday("2000-02-28", date("2027-02-28")));
        assert!(!is_birthday("2000-02-29", date("2027-03-01")));
        // In a leap year it has its own day, and Feb 28 is only Feb 28's.
        assert!(!is_birthday("2000-02-29", date("2028-02-28")));
        assert!(is_birthday("2000-02-29", date("2028-02-29")));
        assert!(is_birthday("2001-02-28", date("2028-02-28")));
    }

    #[test]
    fn local_midnight_follows_the_zone() {
        let tokyo: Tz = "Asia/Tokyo".parse().expect("zone");
        let midnight = local_midnight(tokyo, date("2026-03-11")).expect("exists");
        // 2026-03-10T15:00Z: still the 10th in UTC.
        assert_eq!(midnight, 1_773_154_800_000);
        assert_eq!(local_date(tokyo, midnight), Some(date("2026-03-11")));
        assert_eq!(local_date(Tz::UTC, midnight), Some(date("2026-03-10")));
        assert_eq!(local_date(tokyo, midnight - 1), Some(date("2026-03-10")));
        // Santiago skips midnight when DST begins: the day starts at 01:00.
        let santiago: Tz = "America/Santiago".parse().expect("zone");
        let start = local_midnight(santiago, date("2026-09-06")).expect("exists");
        assert_eq!(local_date(santiago, start), Some(date("2026-09-06")));
        assert_eq!(local_date(santiago, start - 1), Some(date("2026-09-05")));
    }
}
