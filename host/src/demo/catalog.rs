//! The demo shop's catalogue — a specialty coffee and tea shop — and the co-purchase
//! structure planted in its orders.
//!
//! The catalogue is fixed (it does not depend on the seed), so a test can name products.
//!
//! **Planted structure**, which a recommender should recover from the seeded orders:
//! - *Pairs* ([`planted_pairs`]): when an order contains the anchor of a pair, the
//!   companion is added to the same order with probability [`PAIR_PROBABILITY`]. A
//!   companion is otherwise an ordinary, modestly popular product, so its lift given
//!   the anchor is high. Pairs are one-way: a companion does not pull its anchor.
//! - *Bundles* ([`planted_bundles`]): when an order contains one member of a bundle,
//!   each other member is added with probability [`BUNDLE_PROBABILITY`].
//! - *Replenishment*: products in replenishable categories ([`replenish_days`]) are
//!   bought again by the same customer on a later order with probability
//!   [`REPLENISH_PROBABILITY`].
//! - *Taste*: a customer prefers coffee or tea, which shifts the categories they buy from.

use crate::store::products::Product;

/// Chance that an order with a pair's anchor also holds its companion.
pub const PAIR_PROBABILITY: f64 = 0.65;
/// Chance that each other member of a bundle joins an order holding one member.
pub const BUNDLE_PROBABILITY: f64 = 0.5;
/// Chance that a later order re-buys a replenishable product from the previous order.
pub const REPLENISH_PROBABILITY: f64 = 0.6;

/// Where the demo storefront lives (a reserved example domain).
pub const STORE_URL: &str = "https://demo-shop.example";

/// A category of the demo catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    pub name: &'static str,
    /// Typical days between purchases of one of its products, for consumables.
    pub replenish_days: Option<u32>,
    /// Relative weight of the category when a coffee lover picks a product.
    pub coffee_weight: u32,
    /// Relative weight of the category when a tea lover picks a product.
    pub tea_weight: u32,
    /// Title and price in minor units, in popularity order (most popular first).
    items: &'static [(&'static str, i64)],
    /// Sizes each item comes in, as title suffixes with a price factor in percent.
    sizes: &'static [(&'static str, i64)],
}

const BAG_SIZES: &[(&str, i64)] = &[("250 g", 100), ("1 kg", 330)];
const TIN_SIZES: &[(&str, i64)] = &[("50 g", 100), ("200 g", 320)];
const ONE_SIZE: &[(&str, i64)] = &[("", 100)];
const COLOURS: &[(&str, i64)] = &[("Slate", 100), ("Sand", 100), ("Forest", 100)];

/// The categories, in catalogue order.
pub const CATEGORIES: &[Category] = &[
    Category {
        name: "Coffee",
        replenish_days: Some(30),
        coffee_weight: 40,
        tea_weight: 4,
        items: &[
            ("House Espresso Blend", 1500),
            ("Colombia Huila", 1700),
            ("Ethiopia Yirgacheffe", 1900),
            ("Brazil Cerrado", 1450),
            ("Guatemala Antigua", 1750),
            ("Kenya Nyeri", 2100),
            ("Sumatra Mandheling", 1800),
            ("Decaf Swiss Water", 1650),
            ("Costa Rica Tarrazu", 1850),
            ("Rwanda Huye", 2000),
        ],
        sizes: BAG_SIZES,
    },
    Category {
        name: "Tea",
        replenish_days: Some(45),
        coffee_weight: 4,
        tea_weight: 40,
        items: &[
            ("Earl Grey", 900),
            ("Sencha", 1200),
            ("Darjeeling First Flush", 1600),
            ("Masala Chai", 1000),
            ("Ceremonial Matcha", 2400),
            ("Jasmine Pearls", 1500),
            ("Oolong Tieguanyin", 1700),
            ("Chamomile", 800),
            ("Rooibos", 850),
        ],
        sizes: TIN_SIZES,
    },
    Category {
        name: "Filters & Care",
        replenish_days: Some(60),
        coffee_weight: 10,
        tea_weight: 2,
        items: &[
            ("Pour-Over Paper Filters (100)", 700),
            ("Descaling Tablets", 1100),
            ("Espresso Machine Cleaner", 1300),
            ("Cold Brew Filter Bags (50)", 900),
            ("Cleaning Brush Set", 1200),
        ],
        sizes: ONE_SIZE,
    },
    Category {
        name: "Brewers",
        replenish_days: None,
        coffee_weight: 8,
        tea_weight: 1,
        items: &[
            ("Pour-Over Dripper", 2800),
            ("French Press 1 L", 3500),
            ("Moka Pot 6-Cup", 3900),
            ("Cold Brew Jar", 3200),
            ("Travel Press", 2900),
            ("Siphon Brewer", 8900),
            ("Espresso Machine Classic", 39900),
            ("Espresso Machine Pro", 89900),
        ],
        sizes: ONE_SIZE,
    },
    Category {
        name: "Grinders",
        replenish_days: None,
        coffee_weight: 4,
        tea_weight: 0,
        items: &[("Hand Grinder", 6900), ("Burr Grinder", 14900), ("Flat Burr Grinder Pro", 34900)],
        sizes: ONE_SIZE,
    },
    Category {
        name: "Kettles & Scales",
        replenish_days: None,
        coffee_weight: 4,
        tea_weight: 4,
        items: &[
            ("Gooseneck Kettle", 4500),
            ("Digital Scale", 2900),
            ("Electric Gooseneck Kettle", 9900),
            ("Timer Scale Pro", 5900),
        ],
        sizes: ONE_SIZE,
    },
    Category {
        name: "Tea Ware",
        replenish_days: None,
        coffee_weight: 0,
        tea_weight: 8,
        items: &[
            ("Tea Infuser", 1200),
            ("Glass Teapot", 3400),
            ("Cast Iron Teapot", 5900),
            ("Matcha Whisk Set", 2900),
            ("Tea Storage Tin", 1400),
        ],
        sizes: ONE_SIZE,
    },
    Category {
        name: "Mugs & Cups",
        replenish_days: None,
        coffee_weight: 6,
        tea_weight: 6,
        items: &[
            ("Ceramic Mug", 1800),
            ("Double-Wall Glass", 1600),
            ("Travel Tumbler", 2600),
            ("Espresso Cup Set", 3200),
            ("Teacup and Saucer", 2200),
        ],
        sizes: COLOURS,
    },
    Category {
        name: "Gifts",
        replenish_days: None,
        coffee_weight: 2,
        tea_weight: 2,
        items: &[("Gift Card", 5000), ("Tasting Box", 3900), ("Three-Month Subscription Gift", 12900)],
        sizes: ONE_SIZE,
    },
];

/// The planted pairs as (anchor title, companion title), sized products at their smallest size.
const PAIRS: &[(&str, &str)] = &[
    ("Pour-Over Dripper", "Pour-Over Paper Filters (100)"),
    ("French Press 1 L", "Colombia Huila 250 g"),
    ("Moka Pot 6-Cup", "House Espresso Blend 250 g"),
    ("Cold Brew Jar", "Cold Brew Filter Bags (50)"),
    ("Espresso Machine Classic", "Espresso Machine Cleaner"),
    ("Hand Grinder", "Ethiopia Yirgacheffe 250 g"),
    ("Gooseneck Kettle", "Digital Scale"),
    ("Cast Iron Teapot", "Darjeeling First Flush 50 g"),
    ("Matcha Whisk Set", "Ceremonial Matcha 50 g"),
    ("Tea Infuser", "Sencha 50 g"),
];

/// The planted bundles, by title.
const BUNDLES: &[&[&str]] = &[
    &["Espresso Machine Pro", "Flat Burr Grinder Pro", "Espresso Cup Set Slate"],
    &["Siphon Brewer", "Kenya Nyeri 250 g", "Timer Scale Pro"],
];

/// A URL-safe slug of a title.
fn slug(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// The product id of a catalogue title.
pub fn product_id(title: &str) -> String {
    slug(title)
}

/// The category a product of the catalogue is in, with its index in [`CATEGORIES`].
pub fn category_of(product: &Product) -> Option<(usize, &'static Category)> {
    CATEGORIES.iter().enumerate().find(|(_, c)| product.category.as_deref() == Some(c.name))
}

/// Days between purchases of products in `category`, when it holds consumables.
pub fn replenish_days(category: &str) -> Option<u32> {
    CATEGORIES.iter().find(|c| c.name == category).and_then(|c| c.replenish_days)
}

/// The demo catalogue: every item of every category in every size, in category order
/// and, within a category, in popularity order.
pub fn catalog() -> Vec<Product> {
    let mut products = Vec::new();
    for category in CATEGORIES {
        for (title, price) in category.items {
            for (size, factor) in category.sizes {
                let title = if size.is_empty() { (*title).to_owned() } else { format!("{title} {size}") };
                let id = product_id(&title);
                products.push(Product {
                    // The product's page on the demo storefront of `patron serve --demo`,
                    // which draws a tile for every product: the demo ships no images.
                    url: Some(format!("/demo/products/{id}")),
                    image_url: None,
                    id,
                    title,
                    // Prices end in 0 or 5 minor units, as shop prices do.
                    price: (price * factor / 100 + 2) / 5 * 5,
                    currency: None,
                    category: Some(category.name.to_owned()),
                    available: true,
                });
            }
        }
    }
    products
}

/// The planted pairs as (anchor product id, companion product id).
pub fn planted_pairs() -> Vec<(String, String)> {
    PAIRS.iter().map(|(anchor, companion)| (product_id(anchor), product_id(companion))).collect()
}

/// The planted bundles as lists of product ids.
pub fn planted_bundles() -> Vec<Vec<String>> {
    BUNDLES.iter().map(|bundle| bundle.iter().map(|title| product_id(title)).collect()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn planted_products_exist_and_ids_are_unique() {
        let products = catalog();
        let ids: HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), products.len());
        assert!(products.len() >= 80, "{} products", products.len());
        for (anchor, companion) in planted_pairs() {
            assert!(ids.contains(anchor.as_str()) && ids.contains(companion.as_str()), "{anchor} / {companion}");
        }
        for id in planted_bundles().concat() {
            assert!(ids.contains(id.as_str()), "{id}");
        }
        assert!(products.iter().all(|p| p.clone().validate().is_ok() && p.price > 0));
        assert_eq!(product_id("French Press 1 L"), "french-press-1-l");
        assert_eq!(replenish_days("Coffee"), Some(30));
        assert_eq!(replenish_days("Grinders"), None);
    }
}
