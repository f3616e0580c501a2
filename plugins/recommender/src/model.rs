//! The model: compact counts that `train` folds orders into and `recommend`
//! reads in place.
//!
//! There is no "last chunk" call in contract 0.1.0, so the model is never
//! "finished": every `train` call returns the same thing — counts, plus
//! what serving needs precomputed from them (each product's window count,
//! the best-seller lists). Neighbours are ranked lazily, at serve time, from
//! the context product's row of co-purchase counts. `recommend` never decodes
//! the whole blob: it binary-searches the sorted product ids and reads the
//! few rows and lists it needs, so its cost does not grow with the model.
//!
//! # Blob layout (version 1)
//!
//! All fixed-width integers little-endian. Header:
//! `"PRCM"`, `version: u32`, `orders: u64` (paid orders counted),
//! `newest: i64` (newest order time, `i64::MIN` if none), `window-days: u32`,
//! `products: u32` (P), `categories: u32` (C), `max-orders: u32`,
//! `max-window: u32` (largest per-product counts), `bucket-base: i64`.
//! Then ten sections, each a `u32` byte length and its bytes:
//!
//! 1. product id offsets, `(P+1) × u32`; 2. product ids, UTF-8, sorted
//!    byte-wise (a product's index is its rank in this order);
//! 3. per product `category: u32` (`u32::MAX`: none), `orders: u32`
//!    (all-time orders containing it), `window: u32` (orders in the window);
//! 4. row offsets, `(P+1) × u32`; 5. rows: per product, its co-purchased
//!    products sorted by index as varint pairs (index delta, orders together);
//! 6. category name offsets, `(C+1) × u32`; 7. category names, sorted;
//! 8. list offsets, `(C+2) × u32`, in entries; 9. lists, `u32` product
//!    indices: best sellers overall, then per category (at most
//!    [`POPULAR_LIST`] each);
//! 10. window buckets: varint count, then varint triples (bucket − base,
//!     product, orders), so later chunks can move the window.

use std::collections::HashMap;

use patron_sdk::time::DAY_MS;
use patron_sdk::{Error, Order, OrderStatus, Product};

use crate::codec::{Reader, Writer, bad_model, len_u32, u32_at};
use crate::config::{Config, Similarity};
use crate::sort::{sort_u32, sorted};

/// The blob's first bytes.
const MAGIC: &[u8; 4] = b"PRCM";
/// The layout version written.
const VERSION: u32 = 1;
/// Best sellers kept per list (overall, and per category).
pub const POPULAR_LIST: usize = 100;
/// `category` of a product without one.
const NO_CATEGORY: u32 = u32::MAX;

/// Days per window bucket: windows up to 30 days are counted per day, longer
/// ones in about 30 buckets, which bounds the model.
fn bucket_days(window_days: u32) -> i64 {
    i64::from(window_days.div_ceil(30).max(1))
}

/// The bucket holding time `t` for a window of `window_days`.
fn bucket_of(t: i64, window_days: u32) -> i64 {
    t.div_euclid(DAY_MS).div_euclid(bucket_days(window_days))
}

/// The first bucket inside the window that ends with the bucket of `newest`.
fn first_window_bucket(newest: i64, window_days: u32) -> i64 {
    let buckets = i64::from(window_days).div_euclid(bucket_days(window_days)).max(1);
    bucket_of(newest, window_days) - buckets + 1
}

/// How strongly `b` goes with `a`: `together` orders of `orders` contain
/// both, `na` and `nb` contain each.
pub fn similarity(kind: Similarity, together: u32, na: u32, nb: u32, orders: u64) -> f64 {
    let (t, na, nb) = (f64::from(together), f64::from(na.max(1)), f64::from(nb.max(1)));
    match kind {
        Similarity::Cosine => t / (na * nb).sqrt(),
        Similarity::Lift => t * (orders.max(1) as f64) / (na * nb),
    }
}

/// The training state: every count, by product index in order of first sight.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    category: Vec<Option<u32>>,
    categories: Vec<String>,
    category_index: HashMap<String, u32>,
    /// All-time paid orders containing each product.
    orders_of: Vec<u32>,
    /// Orders containing both products, keyed `(lower index, higher index)`.
    pairs: HashMap<(u32, u32), u32>,
    /// Orders per `(bucket, product)` inside the window.
    buckets: HashMap<(i64, u32), u32>,
    /// Paid orders counted.
    orders: u64,
    /// Newest order time counted.
    newest: Option<i64>,
    /// Popularity window, fixed by the first chunk.
    window_days: u32,
}

impl Counts {
    /// An empty model with the window of `config`.
    pub fn new(config: &Config) -> Self {
        Self { window_days: config.window_days, ..Self::default() }
    }

    /// The popularity window this model counts over, in days.
    pub fn window_days(&self) -> u32 {
        self.window_days
    }

    fn product(&mut self, id: &str) -> Result<u32, Error> {
        if let Some(&i) = self.index.get(id) {
            return Ok(i);
        }
        let i = len_u32(self.ids.len())?;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        self.category.push(None);
        self.orders_of.push(0);
        Ok(i)
    }

    fn category_id(&mut self, name: &str) -> Result<u32, Error> {
        if let Some(&c) = self.category_index.get(name) {
            return Ok(c);
        }
        let c = len_u32(self.categories.len())?;
        if c == NO_CATEGORY {
            return Err(Error::new("model-too-large", "too many categories"));
        }
        self.categories.push(name.to_owned());
        self.category_index.insert(name.to_owned(), c);
        Ok(c)
    }

    /// Fold a chunk in: the catalogue's categories (they override those of
    /// line items), then every paid order. Orders dated after `now` count as
    /// placed `now`.
    pub fn fold(&mut self, orders: &[Order], catalogue: &[Product], now: i64, config: &Config) -> Result<(), Error> {
        for product in catalogue.iter().filter(|p| !p.id.is_empty()) {
            let i = self.product(&product.id)? as usize;
            if let Some(name) = &product.category {
                self.category[i] = Some(self.category_id(name)?);
            }
        }
        let mut basket: Vec<u32> = Vec::new();
        for order in orders.iter().filter(|o| o.status == OrderStatus::Paid) {
            basket.clear();
            for item in order.items.iter().filter(|i| !i.product_id.is_empty()) {
                let p = self.product(&item.product_id)?;
                if let (None, Some(name)) = (self.category[p as usize], &item.category) {
                    self.category[p as usize] = Some(self.category_id(name)?);
                }
                basket.push(p);
            }
            sort_u32(&mut basket, &|a, b| a.cmp(&b));
            basket.dedup();
            if basket.is_empty() {
                continue;
            }
            let at = order.placed_at.min(now);
            let bucket = bucket_of(at, self.window_days);
            self.orders += 1;
            self.newest = Some(self.newest.map_or(at, |n| n.max(at)));
            for &p in &basket {
                let n = &mut self.orders_of[p as usize];
                *n = n.saturating_add(1);
                let b = self.buckets.entry((bucket, p)).or_default();
                *b = b.saturating_add(1);
            }
            if basket.len() <= config.max_basket_size as usize {
                for (k, &a) in basket.iter().enumerate() {
                    for &b in &basket[k + 1..] {
                        let n = self.pairs.entry((a, b)).or_default();
                        *n = n.saturating_add(1);
                    }
                }
            }
        }
        if let Some(newest) = self.newest {
            let first = first_window_bucket(newest, self.window_days);
            self.buckets.retain(|&(bucket, _), _| bucket >= first);
        }
        Ok(())
    }

    /// The blob: counts in serving order, each product's co-purchases cut to
    /// the `max-neighbours` that rank best (see README, "Model").
    pub fn encode(&self, config: &Config) -> Result<Vec<u8>, Error> {
        let p = self.ids.len();
        // Products and categories in byte order of their names.
        let mut order: Vec<u32> = (0..len_u32(p)?).collect();
        sort_u32(&mut order, &|a, b| self.ids[a as usize].cmp(&self.ids[b as usize]));
        let mut new_of = vec![0u32; p];
        for (new, &old) in order.iter().enumerate() {
            new_of[old as usize] = len_u32(new)?;
        }
        let mut cat_order: Vec<u32> = (0..len_u32(self.categories.len())?).collect();
        sort_u32(&mut cat_order, &|a, b| self.categories[a as usize].cmp(&self.categories[b as usize]));
        let mut cat_new = vec![0u32; cat_order.len()];
        for (new, &old) in cat_order.iter().enumerate() {
            cat_new[old as usize] = len_u32(new)?;
        }

        // Per product (new index): category, all-time orders, window orders.
        let mut category = vec![NO_CATEGORY; p];
        let mut orders_of = vec![0u32; p];
        let mut window = vec![0u32; p];
        for (old, &new) in new_of.iter().enumerate() {
            let new = new as usize;
            category[new] = self.category[old].map_or(NO_CATEGORY, |c| cat_new[c as usize]);
            orders_of[new] = self.orders_of[old];
        }
        for (&(_, old), &n) in &self.buckets {
            let w = &mut window[new_of[old as usize] as usize];
            *w = w.saturating_add(n);
        }

        // Rows of co-purchases, cut to the best `max-neighbours`.
        let mut rows: Vec<Vec<(u32, u32)>> = vec![Vec::new(); p];
        for (&(a, b), &n) in &self.pairs {
            let (a, b) = (new_of[a as usize], new_of[b as usize]);
            rows[a as usize].push((b, n));
            rows[b as usize].push((a, n));
        }
        let keep = config.max_neighbours as usize;
        let mut row_off = Writer::default();
        let mut row_bytes = Writer::default();
        for (a, row) in rows.iter_mut().enumerate() {
            row_off.u32(len_u32(row_bytes.buf.len())?);
            if row.len() > keep {
                let rank = |&(b, n): &(u32, u32)| {
                    let supported = n >= config.min_support;
                    let s = similarity(config.similarity, n, orders_of[a], orders_of[b as usize], self.orders);
                    (supported, s, n)
                };
                *row = sorted(row, |x, y| {
                    let (sx, sy) = (rank(x), rank(y));
                    sy.0.cmp(&sx.0).then(sy.1.total_cmp(&sx.1)).then(sy.2.cmp(&sx.2)).then(x.0.cmp(&y.0))
                });
                row.truncate(keep);
            }
            *row = sorted(row, |x, y| x.cmp(y));
            let mut prev = 0u32;
            for &(b, n) in row.iter() {
                row_bytes.varint(u64::from(b - prev));
                row_bytes.varint(u64::from(n));
                prev = b;
            }
        }
        row_off.u32(len_u32(row_bytes.buf.len())?);

        // Best sellers: by window orders, then all-time orders, then id.
        let ranked = |members: &mut Vec<u32>| {
            sort_u32(members, &|a, b| {
                let (a, b) = (a as usize, b as usize);
                window[b].cmp(&window[a]).then(orders_of[b].cmp(&orders_of[a])).then(a.cmp(&b))
            });
            members.truncate(POPULAR_LIST);
        };
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); cat_order.len() + 1];
        for new in 0..p {
            if orders_of[new] > 0 {
                let i = len_u32(new)?;
                lists[0].push(i);
                if category[new] != NO_CATEGORY {
                    lists[category[new] as usize + 1].push(i);
                }
            }
        }
        let mut list_off = Writer::default();
        let mut list_bytes = Writer::default();
        let mut entries = 0usize;
        for list in &mut lists {
            ranked(list);
            list_off.u32(len_u32(entries)?);
            entries += list.len();
            for &i in list.iter() {
                list_bytes.u32(i);
            }
        }
        list_off.u32(len_u32(entries)?);

        // Window buckets, for later chunks.
        let buckets: Vec<(i64, u32, u32)> =
            self.buckets.iter().map(|(&(b, old), &n)| (b, new_of[old as usize], n)).collect();
        let buckets = sorted(&buckets, |x, y| x.cmp(y));
        let base = buckets.first().map_or(0, |b| b.0);
        let mut bucket_bytes = Writer::default();
        bucket_bytes.varint(buckets.len() as u64);
        for &(b, i, n) in &buckets {
            bucket_bytes.varint(u64::try_from(b - base).map_err(|_| bad_model("bucket order"))?);
            bucket_bytes.varint(u64::from(i));
            bucket_bytes.varint(u64::from(n));
        }

        let mut ids_off = Writer::default();
        let mut ids = Writer::default();
        for &old in &order {
            ids_off.u32(len_u32(ids.buf.len())?);
            ids.buf.extend_from_slice(self.ids[old as usize].as_bytes());
        }
        ids_off.u32(len_u32(ids.buf.len())?);
        let mut records = Writer::default();
        for new in 0..p {
            records.u32(category[new]);
            records.u32(orders_of[new]);
            records.u32(window[new]);
        }
        let mut cat_off = Writer::default();
        let mut cat_names = Writer::default();
        for &old in &cat_order {
            cat_off.u32(len_u32(cat_names.buf.len())?);
            cat_names.buf.extend_from_slice(self.categories[old as usize].as_bytes());
        }
        cat_off.u32(len_u32(cat_names.buf.len())?);

        let mut out = Writer::default();
        out.buf.extend_from_slice(MAGIC);
        out.u32(VERSION);
        out.u64(self.orders);
        out.i64(self.newest.unwrap_or(i64::MIN));
        out.u32(self.window_days);
        out.u32(len_u32(p)?);
        out.u32(len_u32(cat_order.len())?);
        out.u32(orders_of.iter().copied().max().unwrap_or(0));
        out.u32(window.iter().copied().max().unwrap_or(0));
        out.i64(base);
        for section in [
            &ids_off,
            &ids,
            &records,
            &row_off,
            &row_bytes,
            &cat_off,
            &cat_names,
            &list_off,
            &list_bytes,
            &bucket_bytes,
        ] {
            out.section(&section.buf)?;
        }
        Ok(out.buf)
    }

    /// The training state a blob holds (as cut by [`Counts::encode`]).
    pub fn decode(blob: &[u8]) -> Result<Self, Error> {
        let view = ModelView::parse(blob)?;
        let mut counts =
            Counts { window_days: view.window_days, orders: view.orders, newest: view.newest, ..Counts::default() };
        for c in 0..view.categories {
            let name = view.category_name(c).ok_or_else(|| bad_model("category name"))?;
            counts.category_id(name)?;
        }
        for i in 0..view.products {
            let id = view.id(i).ok_or_else(|| bad_model("product id"))?;
            let id = std::str::from_utf8(id).map_err(|_| bad_model("product id is not UTF-8"))?;
            let idx = counts.product(id)?;
            if idx as usize != i {
                return Err(bad_model("duplicate product id"));
            }
            let record = view.record(i);
            counts.category[i] = record.category;
            counts.orders_of[i] = record.orders;
        }
        for a in 0..view.products {
            let a32 = len_u32(a)?;
            view.row(a, |b, n| {
                let key = if a32 < b { (a32, b) } else { (b, a32) };
                counts.pairs.insert(key, n);
            })?;
        }
        let mut r = Reader::new(view.buckets);
        let n = r.varint()?;
        for _ in 0..n {
            let b = view.bucket_base.checked_add_unsigned(r.varint()?).ok_or_else(|| bad_model("bucket"))?;
            let i = r.varint_u32()?;
            if i as usize >= view.products {
                return Err(bad_model("bucket product"));
            }
            counts.buckets.insert((b, i), r.varint_u32()?);
        }
        Ok(counts)
    }
}

/// One product's fixed-width record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Category index, if any.
    pub category: Option<u32>,
    /// All-time paid orders containing the product.
    pub orders: u32,
    /// Paid orders in the window containing the product.
    pub window: u32,
}

/// A blob read in place: header parsed, sections sliced and size-checked.
pub struct ModelView<'a> {
    /// Paid orders counted.
    pub orders: u64,
    /// Newest order time counted.
    pub newest: Option<i64>,
    /// Popularity window in days.
    pub window_days: u32,
    /// Number of products.
    pub products: usize,
    /// Number of categories.
    pub categories: usize,
    /// Largest all-time order count of a product.
    pub max_orders: u32,
    /// Largest window order count of a product.
    pub max_window: u32,
    bucket_base: i64,
    ids_off: &'a [u8],
    ids: &'a [u8],
    records: &'a [u8],
    row_off: &'a [u8],
    rows: &'a [u8],
    cat_off: &'a [u8],
    cat_names: &'a [u8],
    list_off: &'a [u8],
    lists: &'a [u8],
    buckets: &'a [u8],
}

impl<'a> ModelView<'a> {
    /// Read the header and slice the sections, checking their sizes.
    pub fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(blob);
        if r.take(4)? != MAGIC {
            return Err(bad_model("not a recommender model"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad_model(&format!("layout version {version}, expected {VERSION}")));
        }
        let orders = r.u64()?;
        let newest = Some(r.i64()?).filter(|&t| t != i64::MIN);
        let window_days = r.u32()?;
        let products = r.u32()? as usize;
        let categories = r.u32()? as usize;
        let max_orders = r.u32()?;
        let max_window = r.u32()?;
        let bucket_base = r.i64()?;
        let view = Self {
            orders,
            newest,
            window_days,
            products,
            categories,
            max_orders,
            max_window,
            bucket_base,
            ids_off: r.section()?,
            ids: r.section()?,
            records: r.section()?,
            row_off: r.section()?,
            rows: r.section()?,
            cat_off: r.section()?,
            cat_names: r.section()?,
            list_off: r.section()?,
            lists: r.section()?,
            buckets: r.section()?,
        };
        let words = |s: &[u8], n: usize| s.len().is_multiple_of(4) && s.len() / 4 == n;
        let sized = words(view.ids_off, products + 1)
            && view.records.len() == products * 12
            && words(view.row_off, products + 1)
            && words(view.cat_off, categories + 1)
            && words(view.list_off, categories + 2)
            && view.lists.len().is_multiple_of(4);
        if !sized || !r.at_end() {
            return Err(bad_model("section sizes"));
        }
        Ok(view)
    }

    /// The id of product `i`, as bytes.
    pub fn id(&self, i: usize) -> Option<&'a [u8]> {
        let start = u32_at(self.ids_off, i)? as usize;
        let end = u32_at(self.ids_off, i + 1)? as usize;
        self.ids.get(start..end)
    }

    /// The index of product `id`, if the model knows it.
    pub fn find(&self, id: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.products);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.id(mid)?.cmp(id.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The record of product `i` (zeros past the end).
    pub fn record(&self, i: usize) -> Record {
        let word = |k| u32_at(self.records, i * 3 + k).unwrap_or(0);
        let category = u32_at(self.records, i * 3).filter(|&c| c != NO_CATEGORY);
        Record { category: category.filter(|&c| (c as usize) < self.categories), orders: word(1), window: word(2) }
    }

    /// Call `f(neighbour, orders together)` for each co-purchase of product `i`.
    pub fn row(&self, i: usize, mut f: impl FnMut(u32, u32)) -> Result<(), Error> {
        let (Some(start), Some(end)) = (u32_at(self.row_off, i), u32_at(self.row_off, i + 1)) else {
            return Ok(());
        };
        let bytes = self.rows.get(start as usize..end as usize).ok_or_else(|| bad_model("row bounds"))?;
        let mut r = Reader::new(bytes);
        let mut b = 0u32;
        while !r.at_end() {
            b = b.checked_add(r.varint_u32()?).ok_or_else(|| bad_model("row index"))?;
            let n = r.varint_u32()?;
            if b as usize >= self.products {
                return Err(bad_model("row index"));
            }
            f(b, n);
        }
        Ok(())
    }

    /// The name of category `c`.
    pub fn category_name(&self, c: usize) -> Option<&'a str> {
        let start = u32_at(self.cat_off, c)? as usize;
        let end = u32_at(self.cat_off, c + 1)? as usize;
        std::str::from_utf8(self.cat_names.get(start..end)?).ok()
    }

    /// Best sellers overall (`None`) or of category `c`, best first, as
    /// product indices.
    pub fn best_sellers(&self, category: Option<u32>) -> impl Iterator<Item = usize> + 'a {
        let list = category.map_or(0, |c| c as usize + 1);
        let start = u32_at(self.list_off, list).unwrap_or(0) as usize;
        let end = u32_at(self.list_off, list + 1).unwrap_or(0) as usize;
        let (lists, products) = (self.lists, self.products);
        (start..end).filter_map(move |k| u32_at(lists, k)).map(|i| i as usize).filter(move |&i| i < products)
    }
}
