//! The segment map: which score patterns make which named segment.

use patron_sdk::json::{self, Fields, FromJson, Value};

use crate::score::Score;

/// An inclusive range of scores, `[low, high]`, both 1 to 5.
pub type Range = [u8; 2];

/// One entry of the segment map: the customers whose scores fall in every
/// given range. Ranges left out match any score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRule {
    /// Segment name.
    pub name: String,
    /// Recency score range.
    pub r: Option<Range>,
    /// Frequency score range.
    pub f: Option<Range>,
    /// Monetary score range.
    pub m: Option<Range>,
    /// Combined frequency–monetary score range (see [`Score::fm`]).
    pub fm: Option<Range>,
}

impl FromJson for SegmentRule {
    fn from_json(value: &Value) -> Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let rule = Self {
            name: f.required("name")?,
            r: f.optional("r")?,
            f: f.optional("f")?,
            m: f.optional("m")?,
            fm: f.optional("fm")?,
        };
        f.finish()?;
        Ok(rule)
    }
}

impl SegmentRule {
    fn new(name: &str, r: Range, fm: Range) -> Self {
        Self { name: name.to_owned(), r: Some(r), f: None, m: None, fm: Some(fm) }
    }

    /// Whether `score` falls in every range of this rule.
    pub fn matches(&self, score: &Score) -> bool {
        let within = |range: &Option<Range>, value: u8| range.is_none_or(|[lo, hi]| lo <= value && value <= hi);
        within(&self.r, score.r) && within(&self.f, score.f) && within(&self.m, score.m) && within(&self.fm, score.fm())
    }

    /// Why the rule is invalid, if it is.
    pub fn problem(&self) -> Option<String> {
        if self.name.trim().is_empty() {
            return Some("a segment-map entry has an empty name".into());
        }
        [("r", self.r), ("f", self.f), ("m", self.m), ("fm", self.fm)].into_iter().find_map(
            |(key, range)| match range {
                Some([lo, hi]) if !(1..=5).contains(&lo) || !(1..=5).contains(&hi) || lo > hi => {
                    Some(format!("segment-map `{}`: {key} must be [low, high] with 1 <= low <= high <= 5", self.name))
                }
                _ => None,
            },
        )
    }
}

/// The default map, on recency (R) and the combined frequency–monetary score
/// (FM): the widely used R × F grid of RFM practice, with its low-low corner
/// split into `hibernating` (R 2) and `lost` (R 1). It covers each of the 25
/// cells exactly once:
///
/// ```text
///          FM 1            FM 2                 FM 3                 FM 4            FM 5
/// R 5   new             potential-loyalists  potential-loyalists  champions       champions
/// R 4   promising       potential-loyalists  potential-loyalists  loyal           loyal
/// R 3   about-to-sleep  about-to-sleep       need-attention       loyal           loyal
/// R 2   hibernating     hibernating          at-risk              at-risk         cant-lose-them
/// R 1   lost            lost                 at-risk              at-risk         cant-lose-them
/// ```
pub fn default_map() -> Vec<SegmentRule> {
    vec![
        SegmentRule::new("champions", [5, 5], [4, 5]),
        SegmentRule::new("loyal", [3, 4], [4, 5]),
        SegmentRule::new("potential-loyalists", [4, 5], [2, 3]),
        SegmentRule::new("new", [5, 5], [1, 1]),
        SegmentRule::new("promising", [4, 4], [1, 1]),
        SegmentRule::new("need-attention", [3, 3], [3, 3]),
        SegmentRule::new("about-to-sleep", [3, 3], [1, 2]),
        SegmentRule::new("cant-lose-them", [1, 2], [5, 5]),
        SegmentRule::new("at-risk", [1, 2], [3, 4]),
        SegmentRule::new("hibernating", [2, 2], [1, 2]),
        SegmentRule::new("lost", [1, 1], [1, 2]),
    ]
}

/// The name of the first rule of `map` that `score` matches, if any.
pub fn segment_of<'a>(map: &'a [SegmentRule], score: &Score) -> Option<&'a str> {
    map.iter().find(|rule| rule.matches(score)).map(|rule| rule.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_map_covers_every_cell_exactly_once() {
        let map = default_map();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let score = Score { r, f, m };
                    let hits = map.iter().filter(|rule| rule.matches(&score)).count();
                    assert_eq!(hits, 1, "{}", score.code());
                }
            }
        }
        assert!(map.iter().all(|rule| rule.problem().is_none()));
    }

    #[test]
    fn corners_of_the_grid() {
        let map = default_map();
        let of = |r, f, m| segment_of(&map, &Score { r, f, m });
        assert_eq!(of(5, 5, 5), Some("champions"));
        assert_eq!(of(5, 1, 1), Some("new"));
        assert_eq!(of(1, 5, 5), Some("cant-lose-them"));
        assert_eq!(of(1, 1, 1), Some("lost"));
        assert_eq!(of(2, 1, 2), Some("hibernating"));
        assert_eq!(of(3, 3, 3), Some("need-attention"));
    }

    #[test]
    fn bad_ranges_are_reported() {
        let mut rule = SegmentRule::new("x", [4, 2], [1, 5]);
        assert!(rule.problem().is_some());
        rule.r = Some([0, 5]);
        assert!(rule.problem().is_some());
        rule.r = None;
        assert!(rule.problem().is_none());
    }
}
