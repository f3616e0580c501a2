//! Approximate size of a plugin's answer, for the output cap.

use crate::bindings::predictor::exports::patron::plugin::prediction::Predictions;
use crate::bindings::stats_segmenter::exports::patron::plugin::stats_segmentation::Memberships;
use crate::bindings::types::{Action, CouponSpec, Reward, ScoredItem, TierInfo};

/// Bytes an answer takes: string and byte lengths plus a fixed cost per element.
pub(crate) trait OutputSize {
    fn output_size(&self) -> usize;
}

/// Fixed cost counted per list element and per record.
const ELEMENT: usize = 8;

impl OutputSize for String {
    fn output_size(&self) -> usize {
        self.len() + ELEMENT
    }
}

impl OutputSize for u8 {
    fn output_size(&self) -> usize {
        1
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> usize {
        self.iter().map(OutputSize::output_size).sum::<usize>() + ELEMENT
    }
}

impl OutputSize for Memberships {
    fn output_size(&self) -> usize {
        self.names.output_size() + 4 * (self.ends.len() + self.members.len()) + 2 * ELEMENT
    }
}

impl OutputSize for Predictions {
    fn output_size(&self) -> usize {
        let numbers =
            self.p_alive.len() + self.expected_purchases.len() + self.expected_order_value.len() + self.clv.len();
        8 * numbers + self.segment_names.output_size() + 4 * (self.segment_ends.len() + self.segment_members.len())
    }
}

impl OutputSize for ScoredItem {
    fn output_size(&self) -> usize {
        self.product_id.len() + 2 * ELEMENT
    }
}

impl OutputSize for CouponSpec {
    fn output_size(&self) -> usize {
        4 * ELEMENT
    }
}

impl OutputSize for TierInfo {
    fn output_size(&self) -> usize {
        self.tier.len() + self.next_tier.as_ref().map_or(0, String::len) + 3 * ELEMENT
    }
}

impl OutputSize for Reward {
    fn output_size(&self) -> usize {
        self.id.len() + self.name.len() + self.coupon.output_size() + ELEMENT
    }
}

impl OutputSize for Action {
    fn output_size(&self) -> usize {
        ELEMENT
            + match self {
                Action::AddTag(s) | Action::RemoveTag(s) | Action::SetTier(s) | Action::CancelTimer(s) => s.len(),
                Action::AwardPoints(p) => p.reason.len() + ELEMENT,
                Action::IssueCoupon(c) => c.output_size(),
                Action::SendMessage(m) => m.channel.len() + m.template.len() + m.data.len(),
                Action::ScheduleTimer(t) => t.name.len() + t.data.len() + ELEMENT,
            }
    }
}
