//! What a [`StatsSegmenter`](crate::StatsSegmenter) answers for a batch.

/// The segments of each customer of a batch, built one customer at a time with
/// [`push`](Self::push). Names are stored once, each customer's segments as indexes
/// into them: the form the host receives, so the answer crosses to the host as three
/// flat lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memberships {
    names: Vec<String>,
    /// [`NameKey`] of each name, in the same order.
    keys: Vec<NameKey>,
    ends: Vec<u32>,
    members: Vec<u32>,
}

impl Memberships {
    /// No customers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Memberships in the contract's form (see [`into_parts`](Self::into_parts)), or
    /// why they are not well-formed: how the host checks a plugin's answer.
    pub fn from_parts(names: Vec<String>, ends: Vec<u32>, members: Vec<u32>) -> Result<Self, String> {
        if ends.windows(2).any(|w| w[0] > w[1]) {
            return Err("`ends` decreases".into());
        }
        let last = ends.last().map_or(0, |&end| end as usize);
        if last != members.len() {
            return Err(format!("`ends` stops at {last} but there are {} members", members.len()));
        }
        if let Some(bad) = members.iter().find(|&&m| m as usize >= names.len()) {
            return Err(format!("segment index {bad} is not below the {} names", names.len()));
        }
        let keys = names.iter().map(|n| NameKey::of(n)).collect();
        Ok(Self { names, keys, ends, members })
    }

    /// The same memberships as one list of segments per customer.
    pub fn from_lists<S: AsRef<str>>(lists: impl IntoIterator<Item = impl IntoIterator<Item = S>>) -> Self {
        let mut out = Self::new();
        for segments in lists {
            out.push(segments);
        }
        out
    }

    /// Room for `customers` customers.
    pub fn with_capacity(customers: usize) -> Self {
        Self { ends: Vec::with_capacity(customers), members: Vec::with_capacity(customers), ..Self::default() }
    }

    /// Add the next customer of the batch, in `segments` (none: no segment).
    #[inline]
    pub fn push<S: AsRef<str>>(&mut self, segments: impl IntoIterator<Item = S>) {
        for name in segments {
            let index = self.index_of(name.as_ref());
            self.members.push(index);
        }
        self.ends.push(self.members.len() as u32);
    }

    /// Where `name` is in the names, added if new. Plugins give a handful of segment
    /// names, so a scan beats hashing them; it compares keys, and bytes only for names
    /// longer than a key holds.
    #[inline]
    fn index_of(&mut self, name: &str) -> u32 {
        let key = NameKey::of(name);
        let known = self.keys.iter().zip(&self.names).position(|(k, n)| *k == key && (key.is_whole() || n == name));
        let index = known.unwrap_or_else(|| {
            self.names.push(name.to_owned());
            self.keys.push(key);
            self.names.len() - 1
        });
        index as u32
    }

    /// The segment called `name`, to push with [`push_segments`](Self::push_segments).
    pub fn segment(&mut self, name: &str) -> Segment {
        Segment(self.index_of(name))
    }

    /// Add the next customer of the batch, in `segments` (none: no segment): segments
    /// this `Memberships` gave out. What [`push`](Self::push) does without looking up
    /// each name, which is most of the cost of a simple segmenter's batch.
    #[inline]
    pub fn push_segments(&mut self, segments: impl IntoIterator<Item = Segment>) {
        self.members.extend(segments.into_iter().map(|Segment(index)| index));
        self.ends.push(self.members.len() as u32);
    }

    /// Forget every customer but keep the segment names, so that [`Segment`]s given out
    /// stay valid: for reusing one `Memberships` across batches.
    pub fn clear(&mut self) {
        self.ends.clear();
        self.members.clear();
    }

    /// Customers added so far.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no customer was added.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The segments of customer `i` (in the order pushed).
    ///
    /// # Panics
    /// If `i` is not below [`len`](Self::len).
    pub fn segments(&self, i: usize) -> impl Iterator<Item = &str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.members[start..self.ends[i] as usize].iter().map(|&m| self.names[m as usize].as_str())
    }

    /// One list of segments per customer.
    pub fn to_lists(&self) -> Vec<Vec<String>> {
        (0..self.len()).map(|i| self.segments(i).map(str::to_owned).collect()).collect()
    }

    /// The contract's form (`stats-segmentation.memberships`): segment names, then
    /// where each customer's entries end in the last list, the indexes into the names.
    pub fn into_parts(self) -> (Vec<String>, Vec<u32>, Vec<u32>) {
        (self.names, self.ends, self.members)
    }
}

/// A segment name of a [`Memberships`], from [`Memberships::segment`]: cheap to copy
/// and to push. It means that name only in the `Memberships` that gave it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment(u32);

/// A name's length and first eight bytes. Equal keys of names of at most eight bytes
/// (most segment names) mean equal names: comparing keys spares the byte comparison,
/// which in wasm is a call to a byte-by-byte loop and was most of a batch's cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NameKey {
    len: usize,
    head: u64,
}

impl NameKey {
    #[inline]
    fn of(name: &str) -> Self {
        let bytes = name.as_bytes();
        let head = match bytes.first_chunk::<8>() {
            Some(&first) => u64::from_le_bytes(first),
            None => bytes.iter().rev().fold(0, |head, &b| head << 8 | u64::from(b)),
        };
        Self { len: bytes.len(), head }
    }

    /// Whether the key holds the whole name.
    #[inline]
    fn is_whole(self) -> bool {
        self.len <= 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_once_and_customers_keep_their_order() {
        let mut m = Memberships::new();
        m.push(["vip", "new"]);
        m.push(Vec::<String>::new());
        m.push(vec!["new".to_owned()]);
        m.push(["lapsed", "vip"]);
        assert_eq!(m.len(), 4);
        assert_eq!(m.segments(3).collect::<Vec<_>>(), ["lapsed", "vip"]);
        assert_eq!(m.to_lists()[1], Vec::<String>::new());
        let (names, ends, members) = m.into_parts();
        assert_eq!(names, ["vip", "new", "lapsed"]);
        assert_eq!(ends, [2, 2, 3, 5]);
        assert_eq!(members, [0, 1, 1, 2, 0]);
    }

    #[test]
    fn names_that_share_their_first_eight_bytes_stay_apart() {
        let mut m = Memberships::new();
        m.push(["champions", "champion", "champions-of-2025", "new\0"]);
        m.push(["champions-of-2026".to_owned(), "champions".into(), "new".into(), "new\0".into()]);
        assert_eq!(m.segments(1).collect::<Vec<_>>(), ["champions-of-2026", "champions", "new", "new\0"]);
        let (names, _, members) = m.into_parts();
        assert_eq!(names, ["champions", "champion", "champions-of-2025", "new\0", "champions-of-2026", "new"]);
        assert_eq!(members, [0, 1, 2, 3, 4, 0, 5, 3]);
    }

    #[test]
    fn segments_given_out_push_like_their_names() {
        let mut by_name = Memberships::new();
        by_name.push(["lapsed"]);
        by_name.push(["vip", "lapsed"]);
        by_name.push(Vec::<&str>::new());
        let mut by_segment = Memberships::new();
        let [vip, lapsed] = ["vip", "lapsed"].map(|name| by_segment.segment(name));
        assert_eq!(by_segment.segment("vip"), vip);
        by_segment.push_segments([lapsed]);
        by_segment.push(["vip", "lapsed"]);
        by_segment.push_segments([]);
        assert_eq!(by_segment.to_lists(), by_name.to_lists());
        assert_eq!(by_segment.len(), 3);
        by_segment.clear();
        assert!(by_segment.is_empty());
        by_segment.push_segments([vip]);
        assert_eq!(by_segment.to_lists(), [["vip"]]);
    }

    #[test]
    fn lists_and_parts_round_trip() {
        let lists = vec![vec!["vip".to_owned(), "new".into()], vec![], vec!["lapsed".into(), "vip".into()]];
        let m = Memberships::from_lists(lists.clone());
        assert_eq!(m.to_lists(), lists);
        let (names, ends, members) = m.clone().into_parts();
        assert_eq!(Memberships::from_parts(names, ends, members), Ok(m));
    }

    #[test]
    fn malformed_parts_are_refused() {
        let names = || vec!["a".to_owned(), "b".into()];
        assert!(Memberships::from_parts(names(), vec![1, 2], vec![0, 1]).is_ok());
        assert_eq!(Memberships::from_parts(names(), vec![2, 1], vec![0, 1]), Err("`ends` decreases".into()));
        let short = Err("`ends` stops at 1 but there are 2 members".into());
        assert_eq!(Memberships::from_parts(names(), vec![1, 1], vec![0, 1]), short);
        let none = Err("`ends` stops at 0 but there are 1 members".into());
        assert_eq!(Memberships::from_parts(names(), vec![], vec![0]), none);
        let bad = Err("segment index 2 is not below the 2 names".into());
        assert_eq!(Memberships::from_parts(names(), vec![1], vec![2]), bad);
    }
}
