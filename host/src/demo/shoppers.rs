//! Simulated shoppers: who they are, when they buy, what they buy and how they browse.
//!
//! Purchases follow the BG/NBD "buy till you die" model: while alive, a customer buys
//! at a personal rate λ drawn from a gamma distribution (heterogeneous: most buy rarely,
//! a few often), and after each purchase drops out for good with a personal probability
//! p drawn from a beta distribution. So most customers buy once and a minority buy
//! again and again, spread over the two years before the seed's end time.
//!
//! Every customer is generated from their own random stream, derived from the seed and
//! their number, so the output does not depend on how customers are cut into blocks.

use std::collections::HashMap;

use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use rand_distr::{Beta, Exp1, Gamma};

use super::catalog::{
    BUNDLE_PROBABILITY, CATEGORIES, PAIR_PROBABILITY, REPLENISH_PROBABILITY, STORE_URL, catalog, category_of,
    planted_bundles, planted_pairs,
};
use crate::store::bulk::{NewCustomer, NewIdentity, NewRefund};
use crate::store::customers::CustomerInput;
use crate::store::events::NewEvent;
use crate::store::orders::{Order, OrderLine, OrderStatus};
use crate::store::products::Product;

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
const YEAR: f64 = 365.25 * DAY as f64;
/// How far back the shop's history goes.
pub const HISTORY_DAYS: i64 = 730;

/// Shape and scale of the gamma distribution of yearly purchase rates (mean 1.2 a year).
const RATE_SHAPE: f64 = 0.75;
const RATE_SCALE: f64 = 1.6;
/// Beta distribution of the dropout probability after each purchase (mean 0.3).
const DROPOUT_ALPHA: f64 = 1.2;
const DROPOUT_BETA: f64 = 2.8;
/// Share of registered customers who never buy.
const NEVER_BUY: f64 = 0.12;
/// Most orders one customer places.
const MAX_ORDERS: usize = 120;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Daniel", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam", "Maya",
    "Noah", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
    "Amara", "Bruno", "Clara", "Dmitri", "Emma", "Farah", "Gabriel", "Hana", "Ivan", "Julia", "Kenji", "Lena", "Mateo",
    "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Theo", "Ulla", "Victor", "Wanda", "Yara", "Zain",
];
const LAST_NAMES: &[&str] = &[
    "Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen", "Kowalski",
    "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt", "Tanaka", "Umeh", "Varga",
    "Weber", "Xu", "Yilmaz", "Zhang", "Almeida", "Berg", "Chen", "Diaz", "Eriksson", "Ferreira", "Gomez", "Horvat",
    "Ito", "Kim", "Lopez", "Martin", "Novak", "Olsen", "Patel", "Reyes", "Silva", "Torres", "Walker", "Young",
];
const CHANNELS: &[(&str, u32)] =
    &[("organic", 35), ("google_ads", 20), ("instagram", 18), ("referral", 12), ("newsletter", 10), ("marketplace", 5)];

/// A block of generated rows, ready for bulk insertion.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Block {
    pub customers: Vec<NewCustomer>,
    pub identities: Vec<NewIdentity>,
    pub orders: Vec<Order>,
    pub refunds: Vec<NewRefund>,
    pub events: Vec<NewEvent>,
}

/// Generates customers with their orders and events; shared by the threads that run it.
pub struct Generator {
    seed: u64,
    end: i64,
    currency: String,
    products: Vec<Product>,
    /// Indices of products by category (index in `CATEGORIES`), popularity order.
    by_category: Vec<Vec<usize>>,
    /// Per category: how likely each of its products is to be picked.
    popularity: Vec<WeightedIndex<f64>>,
    /// Category weights for coffee lovers and tea lovers.
    coffee_taste: WeightedIndex<u32>,
    tea_taste: WeightedIndex<u32>,
    companion: HashMap<usize, usize>,
    bundles: Vec<Vec<usize>>,
    bundle_of: HashMap<usize, usize>,
    channels: WeightedIndex<u32>,
    rates: Gamma<f64>,
    dropouts: Beta<f64>,
    /// How much more often than drawn customers buy, and how much less likely they drop
    /// out after a purchase (1: as drawn); see [`Generator::with_orders_per_customer`].
    repeat: f64,
}

/// Errors in the generator's fixed parameters (a bug, not bad input).
#[derive(Debug, thiserror::Error)]
#[error("demo generator parameters are invalid: {0}")]
pub struct GeneratorError(String);

/// A 64-bit mix of two numbers (SplitMix64's finalizer), to derive independent streams.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Generator {
    /// A generator for shop history ending at `end` (unix ms), prices in `currency`.
    pub fn new(seed: u64, end: i64, currency: &str) -> Result<Self, GeneratorError> {
        let invalid = |e: &dyn std::fmt::Display| GeneratorError(e.to_string());
        let products = catalog();
        let index: HashMap<&str, usize> = products.iter().enumerate().map(|(i, p)| (p.id.as_str(), i)).collect();
        let mut by_category = vec![Vec::new(); CATEGORIES.len()];
        for (i, product) in products.iter().enumerate() {
            let (c, _) =
                category_of(product).ok_or_else(|| GeneratorError(format!("{} has no category", product.id)))?;
            by_category[c].push(i);
        }
        // Zipf-like popularity within a category; smaller sizes come first and sell more.
        let popularity = by_category
            .iter()
            .map(|items| {
                WeightedIndex::new((0..items.len()).map(|rank| 1.0 / (rank as f64 + 1.5))).map_err(|e| invalid(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let taste = |weight: fn(&super::catalog::Category) -> u32| {
            WeightedIndex::new(CATEGORIES.iter().map(weight)).map_err(|e| invalid(&e))
        };
        let lookup = |id: &String| {
            index.get(id.as_str()).copied().ok_or_else(|| GeneratorError(format!("unknown product {id}")))
        };
        let mut companion = HashMap::new();
        for (anchor, other) in planted_pairs() {
            companion.insert(lookup(&anchor)?, lookup(&other)?);
        }
        let bundles = planted_bundles()
            .iter()
            .map(|bundle| bundle.iter().map(lookup).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        let bundle_of =
            bundles.iter().enumerate().flat_map(|(b, members)| members.iter().map(move |m| (*m, b))).collect();
        Ok(Self {
            seed,
            end,
            currency: currency.to_owned(),
            by_category,
            popularity,
            coffee_taste: taste(|c| c.coffee_weight)?,
            tea_taste: taste(|c| c.tea_weight)?,
            companion,
            bundles,
            bundle_of,
            channels: WeightedIndex::new(CHANNELS.iter().map(|(_, w)| *w)).map_err(|e| invalid(&e))?,
            rates: Gamma::new(RATE_SHAPE, RATE_SCALE).map_err(|e| invalid(&e))?,
            dropouts: Beta::new(DROPOUT_ALPHA, DROPOUT_BETA).map_err(|e| invalid(&e))?,
            products,
            repeat: 1.0,
        })
    }

    /// The same generator with customers buying `orders` times each on average (all
    /// statuses, never-buyers included; ~1.3 as drawn): purchase rates are multiplied and
    /// dropout probabilities divided by one factor, found by bisection on a sample of
    /// simulated customers, so the mean is met to within a few per cent.
    #[must_use]
    pub fn with_orders_per_customer(mut self, orders: f64) -> Self {
        const SAMPLE: u64 = 4_000;
        let mean = |repeat: f64| {
            let total: usize = (0..SAMPLE).map(|n| self.orders_of(n, repeat)).sum();
            total as f64 / SAMPLE as f64
        };
        let (mut low, mut high) = (0.05, 1.0);
        while mean(high) < orders && high < 1e4 {
            (low, high) = (high, high * 2.0);
        }
        for _ in 0..30 {
            let middle = f64::midpoint(low, high);
            if mean(middle) < orders { low = middle } else { high = middle }
        }
        self.repeat = high;
        self
    }

    /// How many orders customer `n` places with factor `repeat`: the purchase loop of
    /// [`Shopper::live`] alone, on a stream of its own.
    fn orders_of(&self, n: u64, repeat: f64) -> usize {
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ 0x0CA1_1B8A, n));
        let start = self.end - HISTORY_DAYS * DAY;
        let mut at = start + ((self.end - start) as f64 * rng.r#gen::<f64>().sqrt()) as i64;
        if rng.gen_bool(NEVER_BUY) {
            return 0;
        }
        let rate = self.rates.sample(&mut rng).max(1e-3) * repeat;
        let dropout = self.dropouts.sample(&mut rng) / repeat;
        let mut orders = 0;
        while orders < MAX_ORDERS && at < self.end {
            orders += 1;
            if rng.gen_bool(dropout.min(1.0)) {
                break;
            }
            let gap: f64 = rng.sample::<f64, _>(Exp1) / rate;
            at += (gap * YEAR) as i64 + DAY / 2;
        }
        orders
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// Customers `range` (numbered from 0) with everything they did.
    pub fn block(&self, range: std::ops::Range<u64>) -> Block {
        let mut block = Block::default();
        for n in range {
            self.customer(n, &mut block);
        }
        block
    }

    /// Generates customer `n` into `block`.
    fn customer(&self, n: u64, block: &mut Block) {
        let mut rng = StdRng::seed_from_u64(mix(self.seed, n));
        let id = (mix(self.seed ^ 0xC0FF_EE00, n) >> 1) as i64;
        let start = self.end - HISTORY_DAYS * DAY;
        // Acquisitions grow over time: density rising linearly towards the end.
        let acquired = start + ((self.end - start) as f64 * rng.r#gen::<f64>().sqrt()) as i64;
        let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
        let email = format!("{}.{}.{}@example.com", first.to_lowercase(), last.to_lowercase(), n + 1);
        let phone = rng.gen_bool(0.35).then(|| format!("+1555{:07}", n % 10_000_000));
        let birthday = rng.gen_bool(0.8).then(|| self.birthday(&mut rng));
        let mut traits = serde_json::Map::new();
        traits.insert("acquisition_channel".into(), CHANNELS[self.channels.sample(&mut rng)].0.into());
        let input = CustomerInput {
            external_id: Some(format!("demo-{}", n + 1)),
            email: Some(email.clone()),
            phone: phone.clone(),
            first_name: Some(first.to_owned()),
            last_name: Some(last.to_owned()),
            birthday,
            marketing_consent: Some(rng.gen_bool(0.55)),
            traits: Some(traits),
            created_at: Some(acquired),
        };
        block.customers.push(NewCustomer { id, input });
        let anonymous_id = format!("anon-{:016x}", mix(self.seed ^ 0xA110, n));
        for (kind, value) in [("email", Some(email)), ("phone", phone), ("anonymous", Some(anonymous_id.clone()))] {
            if let Some(value) = value {
                block.identities.push(NewIdentity { kind, value, customer_id: id, created_at: acquired });
            }
        }
        let mut shopper =
            Shopper { generator: self, rng, n, customer_id: id, anonymous_id, coffee_lover: false, events: 0, block };
        shopper.coffee_lover = shopper.rng.gen_bool(0.7);
        shopper.live(acquired);
    }

    /// A birthday of an adult aged 18 to 75 at the end of the history.
    fn birthday(&self, rng: &mut StdRng) -> String {
        let end_year = chrono::DateTime::from_timestamp_millis(self.end).map_or(2025, |t| chrono::Datelike::year(&t));
        let year = end_year - rng.gen_range(18..=75);
        let month = rng.gen_range(1..=12u32);
        let days_in_month = match month {
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        format!("{year:04}-{month:02}-{:02}", rng.gen_range(1..=days_in_month))
    }
}

/// One customer being simulated.
struct Shopper<'a> {
    generator: &'a Generator,
    rng: StdRng,
    n: u64,
    customer_id: i64,
    anonymous_id: String,
    coffee_lover: bool,
    /// Events generated so far, for event ids.
    events: u64,
    block: &'a mut Block,
}

impl Shopper<'_> {
    /// Lives from `acquired` to the end of the history: buys, browses, abandons carts.
    fn live(&mut self, acquired: i64) {
        let end = self.generator.end;
        if !self.rng.gen_bool(NEVER_BUY) {
            let rate = self.generator.rates.sample(&mut self.rng).max(1e-3) * self.generator.repeat;
            let dropout = (self.generator.dropouts.sample(&mut self.rng) / self.generator.repeat).min(1.0);
            let mut at = acquired + self.rng.gen_range(0..30 * MINUTE);
            let mut previous: Vec<usize> = Vec::new();
            for k in 0..MAX_ORDERS {
                if at >= end {
                    break;
                }
                previous = self.order(k, at, &previous);
                if self.rng.gen_bool(dropout) {
                    break;
                }
                let gap: f64 = self.rng.sample::<f64, _>(Exp1) / rate;
                at += (gap * YEAR) as i64 + DAY / 2;
            }
        }
        let abandoned = self.count(&[0.70, 0.22, 0.08]);
        for _ in 0..abandoned {
            // Some carts are abandoned recently, so abandoned-cart journeys have work to do.
            let recent = end - 14 * DAY;
            let at = if self.rng.gen_bool(0.3) && recent > acquired {
                self.rng.gen_range(recent..end)
            } else {
                self.rng.gen_range(acquired..end.max(acquired + 1))
            };
            self.abandon_cart(at);
        }
        let browses = self.count(&[0.55, 0.25, 0.12, 0.08]);
        for _ in 0..browses {
            let at = self.rng.gen_range(acquired..end.max(acquired + 1));
            self.browse(at);
        }
    }

    /// A count drawn with the given probabilities of 0, 1, 2, …
    fn count(&mut self, probabilities: &[f64]) -> usize {
        let mut u: f64 = self.rng.r#gen();
        for (count, p) in probabilities.iter().enumerate() {
            if u < *p {
                return count;
            }
            u -= p;
        }
        probabilities.len() - 1
    }

    /// A product picked by this shopper's taste and the catalogue's popularity.
    fn pick(&mut self) -> usize {
        let g = self.generator;
        let category =
            if self.coffee_lover { g.coffee_taste.sample(&mut self.rng) } else { g.tea_taste.sample(&mut self.rng) };
        g.by_category[category][g.popularity[category].sample(&mut self.rng)]
    }

    fn is_consumable(&self, product: usize) -> bool {
        category_of(&self.generator.products[product]).is_some_and(|(_, c)| c.replenish_days.is_some())
    }

    /// Places order `k` at `at`; returns its consumables, which may be bought again.
    fn order(&mut self, k: usize, at: i64, previous: &[usize]) -> Vec<usize> {
        let g = self.generator;
        let mut picks: Vec<usize> =
            previous.iter().copied().filter(|_| self.rng.gen_bool(REPLENISH_PROBABILITY)).collect();
        let fresh = if picks.is_empty() { 1 + self.count(&[0.6, 0.3, 0.1]) } else { self.count(&[0.5, 0.4, 0.1]) };
        for _ in 0..fresh {
            picks.push(self.pick());
        }
        // The planted co-purchase structure.
        for i in 0..picks.len() {
            let product = picks[i];
            if let Some(&companion) = g.companion.get(&product)
                && self.rng.gen_bool(PAIR_PROBABILITY)
            {
                picks.push(companion);
            }
            if let Some(&bundle) = g.bundle_of.get(&product) {
                for &member in &g.bundles[bundle] {
                    if member != product && self.rng.gen_bool(BUNDLE_PROBABILITY) {
                        picks.push(member);
                    }
                }
            }
        }
        let mut seen = Vec::with_capacity(picks.len());
        picks.retain(|p| {
            if seen.contains(p) {
                false
            } else {
                seen.push(*p);
                true
            }
        });
        let lines: Vec<OrderLine> = picks
            .iter()
            .map(|&i| {
                let product = &g.products[i];
                let quantity = if self.is_consumable(i) { 1 + self.count(&[0.7, 0.22, 0.08]) as i64 } else { 1 };
                OrderLine {
                    product_id: Some(product.id.clone()),
                    sku: Some(product.id.to_uppercase()),
                    title: product.title.clone(),
                    category: product.category.clone(),
                    quantity,
                    unit_price: product.price,
                }
            })
            .collect();
        let subtotal: i64 = lines.iter().map(|l| l.quantity * l.unit_price).sum();
        let coupon = if k == 0 && self.rng.gen_bool(0.3) {
            Some(("WELCOME10", 10))
        } else if k > 0 && self.rng.gen_bool(0.06) {
            Some(("LOYAL15", 15))
        } else {
            None
        };
        let discount = coupon.map_or(0, |(_, percent)| subtotal * percent / 100);
        let shipping = if subtotal - discount >= 5000 { 0 } else { 495 };
        let tax = ((subtotal - discount) * 8 + 50) / 100;
        let total = subtotal - discount + shipping + tax;
        let id = format!("demo-{}-{}", self.n + 1, k + 1);
        let roll: f64 = self.rng.r#gen();
        let refund_at = at + self.rng.gen_range(2 * DAY..25 * DAY);
        let (status, refunded) = if roll < 0.015 {
            (OrderStatus::Cancelled, 0)
        } else if roll < 0.035 && refund_at < g.end {
            (OrderStatus::Refunded, total)
        } else if roll < 0.05 && refund_at < g.end {
            (OrderStatus::Fulfilled, lines[0].unit_price.min(total))
        } else if g.end - at < 2 * DAY {
            (if self.rng.gen_bool(0.1) { OrderStatus::Pending } else { OrderStatus::Paid }, 0)
        } else {
            (OrderStatus::Fulfilled, 0)
        };
        if refunded > 0 {
            self.block.refunds.push(NewRefund {
                id: format!("{id}-r1"),
                order_id: id.clone(),
                amount: refunded,
                reason: Some(if status == OrderStatus::Refunded { "returned" } else { "damaged item" }.into()),
                created_at: refund_at,
            });
        }
        self.shopping_session(at, &picks, true);
        let consumables = picks.iter().copied().filter(|&p| self.is_consumable(p)).collect();
        self.block.orders.push(Order {
            id,
            customer_id: Some(self.customer_id),
            status,
            currency: g.currency.clone(),
            subtotal,
            discount,
            shipping,
            tax,
            total,
            refunded,
            coupon_codes: coupon.map(|(code, _)| vec![code.to_owned()]).unwrap_or_default(),
            placed_at: at,
            lines,
        });
        consumables
    }

    /// A session that ends at `at`: lands on the store, views products, puts `cart` in
    /// the cart and, if `checkout`, starts checking out.
    fn shopping_session(&mut self, at: i64, cart: &[usize], checkout: bool) {
        let browsed = self.count(&[0.4, 0.35, 0.25]);
        let mut viewed: Vec<usize> = cart.to_vec();
        for _ in 0..browsed {
            let product = self.pick();
            viewed.insert(self.rng.gen_range(0..=viewed.len()), product);
        }
        let steps = 2 + viewed.len() as i64 + cart.len() as i64;
        let mut t = at - self.rng.gen_range(3..40) * MINUTE;
        let step = ((at - t) / steps).max(1);
        self.event("page_view", t, STORE_URL.to_owned(), "{}".to_owned());
        for product in viewed {
            t += step;
            let p = &self.generator.products[product];
            let properties = format!(
                r#"{{"product_id":"{}","category":"{}","price":{}}}"#,
                p.id,
                p.category.as_deref().unwrap_or_default(),
                p.price
            );
            self.event("product_view", t, p.url.clone().unwrap_or_default(), properties);
        }
        let mut value = 0;
        for &product in cart {
            t += step;
            let p = &self.generator.products[product];
            value += p.price;
            let properties = format!(r#"{{"product_id":"{}","quantity":1,"price":{}}}"#, p.id, p.price);
            self.event("add_to_cart", t, p.url.clone().unwrap_or_default(), properties);
        }
        if checkout {
            let ids: Vec<String> = cart.iter().map(|&i| format!("\"{}\"", self.generator.products[i].id)).collect();
            let properties = format!(
                r#"{{"value":{value},"currency":"{}","product_ids":[{}]}}"#,
                self.generator.currency,
                ids.join(",")
            );
            self.event("checkout_started", (t + step).min(at - 1), format!("{STORE_URL}/checkout"), properties);
        }
    }

    /// A cart filled at `at` and left: no order follows.
    fn abandon_cart(&mut self, at: i64) {
        let items = 1 + self.count(&[0.7, 0.3]);
        let cart: Vec<usize> = (0..items).map(|_| self.pick()).collect();
        let checkout = self.rng.gen_bool(0.4);
        self.shopping_session(at, &cart, checkout);
    }

    /// A visit that views a few products and buys nothing.
    fn browse(&mut self, at: i64) {
        self.shopping_session(at, &[], false);
    }

    fn event(&mut self, kind: &str, occurred_at: i64, url: String, properties: String) {
        self.events += 1;
        self.block.events.push(NewEvent {
            event_id: format!("demo-{}-{}", self.n + 1, self.events),
            kind: kind.to_owned(),
            occurred_at,
            anonymous_id: Some(self.anonymous_id.clone()),
            customer_id: Some(self.customer_id),
            url: Some(url),
            properties,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_750_000_000_000;

    fn generate(seed: u64, customers: u64) -> Block {
        Generator::new(seed, END, "USD").expect("generator").block(0..customers)
    }

    #[test]
    fn is_deterministic_and_independent_of_blocking() {
        let whole = generate(7, 300);
        assert_eq!(whole, generate(7, 300));
        let generator = Generator::new(7, END, "USD").expect("generator");
        let mut halves = generator.block(0..120);
        let rest = generator.block(120..300);
        halves.customers.extend(rest.customers);
        halves.orders.extend(rest.orders);
        halves.events.extend(rest.events);
        assert_eq!(halves.customers, whole.customers);
        assert_eq!(halves.orders, whole.orders);
        assert_eq!(halves.events, whole.events);
        assert_ne!(generate(8, 300).orders, whole.orders);
    }

    #[test]
    fn orders_per_customer_is_a_knob() {
        let generator = Generator::new(1, END, "USD").expect("generator").with_orders_per_customer(5.0);
        let block = generator.block(0..3_000);
        let mean = block.orders.len() as f64 / 3_000.0;
        assert!((4.5..5.5).contains(&mean), "{mean} orders per customer");
    }

    #[test]
    fn buys_till_they_die() {
        let block = generate(1, 5_000);
        let mut per_customer: HashMap<i64, usize> = HashMap::new();
        for order in &block.orders {
            *per_customer.entry(order.customer_id.unwrap_or_default()).or_default() += 1;
        }
        let buyers = per_customer.len() as f64;
        let once = per_customer.values().filter(|&&n| n == 1).count() as f64;
        let often = per_customer.values().filter(|&&n| n >= 5).count() as f64;
        assert!((0.80..0.95).contains(&(buyers / 5_000.0)), "buyers {buyers}");
        assert!(once / buyers > 0.5, "one-time buyers {once} of {buyers}");
        assert!((0.02..0.2).contains(&(often / buyers)), "frequent buyers {often} of {buyers}");
        for order in &block.orders {
            assert!(order.placed_at < END && order.placed_at > END - HISTORY_DAYS * DAY - DAY);
            assert_eq!(order.total, order.subtotal - order.discount + order.shipping + order.tax);
            assert!(order.refunded <= order.total && !order.lines.is_empty());
        }
        for event in &block.events {
            assert!(event.occurred_at < END, "{event:?}");
            assert!(serde_json::from_str::<serde_json::Value>(&event.properties).is_ok(), "{}", event.properties);
        }
        for customer in &block.customers {
            assert!(customer.input.clone().validate().is_ok(), "{customer:?}");
        }
    }

    #[test]
    fn plants_pairs_that_stand_out() {
        let block = generate(3, 20_000);
        for (anchor, companion) in planted_pairs() {
            let has = |o: &Order, id: &str| o.lines.iter().any(|l| l.product_id.as_deref() == Some(id));
            let with_anchor: Vec<&Order> = block.orders.iter().filter(|o| has(o, &anchor)).collect();
            let together = with_anchor.iter().filter(|o| has(o, &companion)).count() as f64;
            let base = block.orders.iter().filter(|o| has(o, &companion)).count() as f64 / block.orders.len() as f64;
            let confidence = together / with_anchor.len().max(1) as f64;
            assert!(with_anchor.len() >= 20, "{anchor} bought {} times", with_anchor.len());
            assert!(confidence > 0.5 && confidence > 4.0 * base, "{anchor} → {companion}: {confidence} vs {base}");
        }
    }
}
