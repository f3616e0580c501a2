//! A segment's size over time, derived from its membership stints (each a row of
//! `segment_memberships` with `joined_at` and, once over, `left_at`): the members at the
//! period's start, then per bucket the stints that began and ended. No snapshots are
//! kept; two indexed counts per period answer it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Period, PeriodView};
use crate::store::{Db, StoreResult};
use crate::timestamp::to_rfc3339;

/// One bucket of a segment's history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SizePoint {
    /// The bucket's start.
    pub at: String,
    /// Members at the bucket's end (or at the period's end, for the last bucket).
    pub members: i64,
    /// Stints that began in the bucket.
    pub joined: i64,
    /// Stints that ended in the bucket.
    pub left: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SegmentHistory {
    pub segment: String,
    pub period: PeriodView,
    /// Members just before `since`.
    pub members_at_start: i64,
    /// Members at the end of the period.
    pub members_at_end: i64,
    pub joined: i64,
    pub left: i64,
    pub trend: Vec<SizePoint>,
}

/// Stints of every segment that began and ended in a period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SegmentFlow {
    pub segment: String,
    pub joined: i64,
    pub left: i64,
}

impl Db {
    /// `segment`'s size per bucket of `period`, with the stints that began and ended.
    pub async fn analytics_segment_history(
        &self,
        shop_id: i64,
        segment: &str,
        period: Period,
    ) -> StoreResult<SegmentHistory> {
        let start = async {
            let members: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM segment_memberships WHERE shop_id = $1 AND segment = $2 AND joined_at < $3 \
                 AND (left_at IS NULL OR left_at >= $3)",
            )
            .bind(shop_id)
            .bind(segment)
            .bind(period.since)
            .fetch_one(self.pool())
            .await?;
            StoreResult::Ok(members)
        };
        let joins = self.stint_ends_per_bucket(shop_id, segment, period, "joined_at");
        let lefts = self.stint_ends_per_bucket(shop_id, segment, period, "left_at");
        let (start, joins, lefts) = tokio::try_join!(start, joins, lefts)?;
        let mut buckets: BTreeMap<i64, (i64, i64)> =
            period.bucket.indexes(period.since, period.until).map(|b| (b, (0, 0))).collect();
        for (bucket, n) in joins {
            buckets.entry(bucket).or_default().0 += n;
        }
        for (bucket, n) in lefts {
            buckets.entry(bucket).or_default().1 += n;
        }
        let mut members = start;
        let trend: Vec<SizePoint> = buckets
            .into_iter()
            .map(|(bucket, (joined, left))| {
                members += joined - left;
                SizePoint { at: to_rfc3339(period.bucket.start_ms(bucket)), members, joined, left }
            })
            .collect();
        Ok(SegmentHistory {
            segment: segment.to_owned(),
            period: PeriodView::from(&period),
            members_at_start: start,
            members_at_end: members,
            joined: trend.iter().map(|p| p.joined).sum(),
            left: trend.iter().map(|p| p.left).sum(),
            trend,
        })
    }

    /// `segment`'s stints whose `column` (`joined_at` or `left_at`) falls in `period`, per
    /// bucket index.
    async fn stint_ends_per_bucket(
        &self,
        shop_id: i64,
        segment: &str,
        period: Period,
        column: &str,
    ) -> StoreResult<Vec<(i64, i64)>> {
        let index = period.bucket.index_sql(self.backend(), column);
        Ok(sqlx::query_as(&format!(
            "SELECT {index}, COUNT(*) FROM segment_memberships WHERE shop_id = $1 AND segment = $2 \
             AND {column} >= $3 AND {column} < $4 GROUP BY {index}"
        ))
        .bind(shop_id)
        .bind(segment)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?)
    }

    /// Stints that began and ended in `period`, for every segment that had either.
    pub async fn analytics_segment_flows(&self, shop_id: i64, period: Period) -> StoreResult<Vec<SegmentFlow>> {
        let joins = self.stint_ends_per_segment(shop_id, period, "joined_at");
        let lefts = self.stint_ends_per_segment(shop_id, period, "left_at");
        let (joins, lefts) = tokio::try_join!(joins, lefts)?;
        let mut flows: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (segment, n) in joins {
            flows.entry(segment).or_default().0 = n;
        }
        for (segment, n) in lefts {
            flows.entry(segment).or_default().1 = n;
        }
        Ok(flows.into_iter().map(|(segment, (joined, left))| SegmentFlow { segment, joined, left }).collect())
    }

    /// Stints whose `column` (`joined_at` or `left_at`) falls in `period`, per segment.
    async fn stint_ends_per_segment(
        &self,
        shop_id: i64,
        period: Period,
        column: &str,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(&format!(
            "SELECT segment, COUNT(*) FROM segment_memberships WHERE shop_id = $1 AND {column} >= $2 \
             AND {column} < $3 GROUP BY segment"
        ))
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?)
    }
}
