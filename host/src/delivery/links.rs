//! Links in messages back to the host: a signed unsubscribe link and click-tracking
//! redirects. Both are HMACs keyed with the shop's stored secret hash, so no one can
//! unsubscribe another customer or turn the redirect into an open redirect.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::shops::Shop;

fn mac(shop: &Shop, purpose: &str, message_id: i64, extra: &str) -> Option<Hmac<Sha256>> {
    let key = hex::decode(&shop.secret_hash).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{purpose}\n{}\n{message_id}\n{extra}", shop.id).as_bytes());
    Some(mac)
}

fn token(shop: &Shop, purpose: &str, message_id: i64, extra: &str) -> String {
    mac(shop, purpose, message_id, extra).map(|m| hex::encode(&m.finalize().into_bytes()[..16])).unwrap_or_default()
}

fn verify(shop: &Shop, purpose: &str, message_id: i64, extra: &str, token: &str) -> bool {
    let (Ok(given), Some(mac)) = (hex::decode(token), mac(shop, purpose, message_id, extra)) else { return false };
    given.len() == 16 && mac.verify_truncated_left(&given).is_ok()
}

/// The link that unsubscribes a message's recipient from marketing.
pub fn unsubscribe_url(public_url: &str, shop: &Shop, message_id: i64) -> String {
    format!("{public_url}/u/{}/{message_id}/{}", shop.id, token(shop, "unsubscribe", message_id, ""))
}

pub fn verify_unsubscribe(shop: &Shop, message_id: i64, token: &str) -> bool {
    verify(shop, "unsubscribe", message_id, "", token)
}

/// A redirect through the host to `target` that records a click on the message.
pub fn tracked_url(public_url: &str, shop: &Shop, message_id: i64, target: &str) -> String {
    let query: String = reqwest::Url::parse_with_params(
        "http://x/",
        &[("u", target), ("t", token(shop, "click", message_id, target).as_str())],
    )
    .ok()
    .and_then(|u| u.query().map(str::to_owned))
    .unwrap_or_default();
    format!("{public_url}/r/{}/{message_id}?{query}", shop.id)
}

pub fn verify_click(shop: &Shop, message_id: i64, target: &str, token: &str) -> bool {
    verify(shop, "click", message_id, target, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Shop {
        Shop {
            id: 9,
            name: "s".into(),
            publishable_key: "pk".into(),
            secret_hash: "ab".repeat(32),
            allowed_origins: vec![],
            currency: "USD".into(),
            timezone: "UTC".into(),
            locale: "en".into(),
            consent_required: false,
            honor_dnt: false,
            previous_secret_hash: None,
            previous_secret_until: None,
            event_retention_days: 396,
            v1_tokens: true,
        }
    }

    #[test]
    fn tokens_bind_shop_message_and_target() {
        let shop = shop();
        let url = unsubscribe_url("http://h", &shop, 5);
        let token = url.rsplit('/').next().expect("token");
        assert!(verify_unsubscribe(&shop, 5, token));
        assert!(!verify_unsubscribe(&shop, 6, token));
        assert!(!verify_unsubscribe(&Shop { id: 10, ..shop.clone() }, 5, token));
        let click = token_of(&tracked_url("http://h", &shop, 5, "https://shop.test/cart"));
        assert!(verify_click(&shop, 5, "https://shop.test/cart", &click));
        assert!(!verify_click(&shop, 5, "https://evil.test/", &click));
        assert!(!verify_click(&shop, 5, "https://shop.test/cart", ""));
    }

    fn token_of(url: &str) -> String {
        let parsed = reqwest::Url::parse(url).expect("url");
        parsed.query_pairs().find(|(k, _)| k == "t").map(|(_, v)| v.into_owned()).expect("t")
    }
}
