//! Signed webhooks per Standard Webhooks 1.0: `webhook-id` (the outbox id, the same on
//! every retry, so receivers drop duplicates), `webhook-timestamp` (unix seconds) and
//! `webhook-signature`, `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` keyed with the
//! base64 part of the `whsec_` secret; while a secret rotates, one signature per secret.
//!
//! A receiver verifies with the Standard Webhooks libraries, e.g. in Python:
//!
//! ```text
//! from standardwebhooks.webhooks import Webhook
//! Webhook("whsec_…").verify(body, {"webhook-id": …, "webhook-timestamp": …, "webhook-signature": …})
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SendError;
use super::ssrf::{self, GuardedResolver};

/// The `v1,<signature>` of one message under one `whsec_` secret; `None` for a malformed secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per valid secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let signatures = secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Option<Vec<_>>>()?;
    Some(signatures.join(" "))
}

/// The HTTP client webhooks go out through: a deadline per request, no redirects (a
/// redirect could lead inward), and the SSRF guard in the resolver.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent("patron-webhooks/1")
        .build()
}

/// One webhook delivery.
pub struct Delivery<'a> {
    pub url: &'a str,
    pub id: &'a str,
    /// Unix seconds.
    pub timestamp: i64,
    pub body: &'a [u8],
    pub secrets: &'a [&'a str],
}

/// Posts a webhook. 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are
/// retried; any other answer means the receiver refuses it for good.
pub async fn send(client: &reqwest::Client, delivery: &Delivery<'_>, allow_private: bool) -> Result<(), SendError> {
    let url = reqwest::Url::parse(delivery.url).map_err(|e| SendError::Permanent(format!("webhook url: {e}")))?;
    // The resolver guards names; an address written in the URL is checked here.
    if let Some(host) = url.host_str()
        && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse()
        && ssrf::is_private(ip)
        && !allow_private
    {
        return Err(SendError::Permanent(format!("webhook target {host} is internal")));
    }
    let signature = signature_header(delivery.secrets, delivery.id, delivery.timestamp, delivery.body)
        .ok_or_else(|| SendError::Permanent("malformed webhook secret".into()))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", delivery.id)
        .header("webhook-timestamp", delivery.timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.to_vec())
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("webhook: {}", describe(&e))))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::Transient(format!("webhook answered {status}")))
    } else {
        Err(SendError::Permanent(format!("webhook answered {status}")))
    }
}

fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_specification_example() {
        // The example in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("signs");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature_header(&[secret, secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).expect("signs");
        assert_eq!(two.split(' ').count(), 2);
        assert!(sign("whsec_!!!", "id", 1, b"").is_none());
    }
}
