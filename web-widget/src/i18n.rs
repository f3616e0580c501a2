//! The text of the panel and the strips in the shop's locale (English and Simplified Chinese), and
//! locale-aware numbers, prices and dates through the browser's `Intl`.
//!
//! Placeholders are `{n}`, `{name}`, `{tier}`, `{date}`, `{shop}`, filled with
//! [`fill`].

use crate::prelude::*;
use js_sys::{Array, Date, Function, Intl, Object, Reflect};
use wasm_bindgen::JsValue;

/// Every string the panel and the strips show.
pub(crate) struct Text {
    /// BCP 47 tag for `Intl` and the panel's `lang` attribute.
    pub(crate) tag: &'static str,
    pub(crate) launcher: &'static str,
    pub(crate) hello: &'static str,
    pub(crate) join_title: &'static str,
    pub(crate) join_body: &'static str,
    pub(crate) join: &'static str,
    pub(crate) tier: &'static str,
    pub(crate) to_next: &'static str,
    pub(crate) top_tier: &'static str,
    pub(crate) points: &'static str,
    pub(crate) expiring: &'static str,
    pub(crate) coupons: &'static str,
    pub(crate) copy: &'static str,
    pub(crate) copied: &'static str,
    pub(crate) expires: &'static str,
    pub(crate) rewards: &'static str,
    pub(crate) cost: &'static str,
    pub(crate) redeem: &'static str,
    pub(crate) redeemed: &'static str,
    pub(crate) insufficient: &'static str,
    pub(crate) failed: &'static str,
    pub(crate) recommended: &'static str,
    /// Heading of a `product` or `cart` strip.
    pub(crate) also_like: &'static str,
    /// Heading of a `home` strip.
    pub(crate) popular: &'static str,
    pub(crate) close: &'static str,
    /// A coupon's fixed amount off, `{n}` the price.
    pub(crate) amount_off: &'static str,
    pub(crate) percent_off: &'static str,
    pub(crate) free_shipping: &'static str,
    /// Appended to a coupon with a minimum spend, `{n}` the price.
    pub(crate) minimum: &'static str,
}

const EN: Text = Text {
    tag: "en",
    launcher: "Rewards",
    hello: "Hi, {name}",
    join_title: "Join {shop} Rewards",
    join_body: "Earn points on every order, unlock member tiers and get coupons made for you.",
    join: "Join now — it's free",
    tier: "{tier} member",
    to_next: "{n}% of the way to {tier}",
    top_tier: "You've reached our top tier. Thank you!",
    points: "points",
    expiring: "{n} points expire on {date}",
    coupons: "Your coupons",
    copy: "Copy",
    copied: "Copied!",
    expires: "Expires {date}",
    rewards: "Spend your points",
    cost: "{n} pts",
    redeem: "Redeem",
    redeemed: "Redeemed! You now have {n} points.",
    insufficient: "You don't have enough points for that reward yet.",
    failed: "Something went wrong. Please try again.",
    recommended: "Picked for you",
    also_like: "You may also like",
    popular: "Popular right now",
    close: "Close",
    amount_off: "{n} off",
    percent_off: "{n}% off",
    free_shipping: "Free shipping",
    minimum: " on orders over {n}",
};

const ZH_CN: Text = Text {
    tag: "zh-CN",
    launcher: "会员奖励",
    hello: "{name}，你好",
    join_title: "加入{shop}会员",
    join_body: "每笔订单都能赚取积分，解锁会员等级，还有为你定制的优惠券。",
    join: "免费加入",
    tier: "{tier}会员",
    to_next: "距离{tier}已完成 {n}%",
    top_tier: "你已是最高等级会员，感谢支持！",
    points: "积分",
    expiring: "{n} 积分将于 {date} 到期",
    coupons: "我的优惠券",
    copy: "复制",
    copied: "已复制！",
    expires: "{date} 到期",
    rewards: "积分兑换",
    cost: "{n} 积分",
    redeem: "兑换",
    redeemed: "兑换成功！当前积分 {n}。",
    insufficient: "积分不足，暂时无法兑换该奖励。",
    failed: "出了点问题，请稍后再试。",
    recommended: "为你推荐",
    also_like: "你可能还喜欢",
    popular: "热门商品",
    close: "关闭",
    amount_off: "减{n}",
    percent_off: "{n}% 优惠",
    free_shipping: "免运费",
    minimum: "，满{n}可用",
};

/// The text for a shop locale; Chinese for any `zh` locale, English otherwise.
pub(crate) fn text(locale: &str) -> &'static Text {
    if locale.starts_with("zh") { &ZH_CN } else { &EN }
}

/// `template` with `{key}` replaced by `value`. (Walked one character at a time: `str::replace`,
/// `split_once` or slicing would bring a substring search or panic paths into the module.)
pub(crate) fn fill(template: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(template.len() + value.len());
    let mut rest = template.chars();
    loop {
        let after_placeholder =
            rest.as_str().strip_prefix('{').and_then(|a| a.strip_prefix(key)).and_then(|a| a.strip_prefix('}'));
        if let Some(after) = after_placeholder {
            out.push_str(value);
            rest = after.chars();
        } else if let Some(c) = rest.next() {
            out.push(c);
        } else {
            return out;
        }
    }
}

/// `n` with the locale's digit grouping, e.g. `12,000`.
pub(crate) fn number(text: &Text, n: f64) -> String {
    format_with(text, &Object::new(), n)
}

/// A price in minor units as the locale writes it, e.g. `$19.99` or `US$19.99`.
pub(crate) fn price(text: &Text, minor_units: f64, currency: &str) -> String {
    let options = Object::new();
    let _ = Reflect::set(&options, &"style".into(), &"currency".into());
    let _ = Reflect::set(&options, &"currency".into(), &currency.into());
    let format = Intl::NumberFormat::new(&locales(text), &options);
    let digits = Reflect::get(&format.resolved_options(), &"maximumFractionDigits".into())
        .ok()
        .and_then(|d| d.as_f64())
        .unwrap_or(2.0);
    let mut scale = 1.0;
    for _ in 0..digits as u32 {
        scale *= 10.0;
    }
    call(&format.format(), minor_units / scale)
}

/// An RFC 3339 timestamp as the locale writes a date; the input unchanged if unparseable.
pub(crate) fn date(text: &Text, rfc3339: &str) -> String {
    let date = Date::new(&JsValue::from_str(rfc3339));
    if date.get_time().is_nan() {
        return rfc3339.to_owned();
    }
    String::from(date.to_locale_date_string(text.tag, &JsValue::UNDEFINED))
}

fn format_with(text: &Text, options: &Object, n: f64) -> String {
    call(&Intl::NumberFormat::new(&locales(text), options).format(), n)
}

fn locales(text: &Text) -> Array {
    Array::of1(&text.tag.into())
}

fn call(format: &Function, n: f64) -> String {
    format.call1(&JsValue::NULL, &n.into()).ok().and_then(|s| s.as_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_only_its_placeholder() {
        assert_eq!(fill("{n} points to {tier}", "n", "1,200"), "1,200 points to {tier}");
        assert_eq!(fill("{tier}会员", "tier", "Gold"), "Gold会员");
        assert_eq!(fill("{", "n", "x"), "{");
    }
}
