//! A shop's channels as the merchant configures them: email over SMTP, or a signed
//! webhook for anything else (SMS, WeChat, push through the merchant's own provider).
//! Everything is checked here, at configuration, so a bad setting is a 422 naming its
//! field rather than a message that fails later.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::ssrf;
use crate::store::customers::InvalidInput;

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain text: for a relay on the same host or network only.
    None,
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// An SMTP server to send email through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    #[schema(minimum = 1)]
    pub port: u16,
    pub tls: TlsMode,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
}

/// A URL every message is POSTed to, signed with the channel's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// http or https, without credentials; a public address unless the host allows private ones.
    pub url: String,
}

/// A channel's settings, by `kind` (read by [`ChannelSettings::from_json`]).
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelSettings {
    Smtp(SmtpSettings),
    Webhook(WebhookSettings),
}

impl ChannelSettings {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Webhook(_) => "webhook",
        }
    }

    /// Reads settings as the API or the store hold them: `{"kind": …, …}`.
    pub fn from_json(kind: &str, mut value: serde_json::Value) -> Result<Self, InvalidInput> {
        if let Some(map) = value.as_object_mut() {
            map.remove("kind");
        }
        let fields = |e: serde_json::Error| InvalidInput::new("settings", e.to_string());
        match kind {
            "smtp" => Ok(Self::Smtp(serde_json::from_value(value).map_err(fields)?)),
            "webhook" => Ok(Self::Webhook(serde_json::from_value(value).map_err(fields)?)),
            other => Err(InvalidInput::new("kind", format!("`{other}` is not `smtp` or `webhook`"))),
        }
    }

    /// The settings as stored (with the SMTP password).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Smtp(s) => serde_json::to_value(s),
            Self::Webhook(w) => serde_json::to_value(w),
        }
        .unwrap_or(serde_json::Value::Null)
    }
}

/// A stored channel's settings with its secrets left out, for listings.
pub fn public_settings(kind: &str, stored: &serde_json::Value) -> serde_json::Value {
    let mut shown = stored.clone();
    if let Some(map) = shown.as_object_mut() {
        if map.get("password").is_some_and(|p| !p.is_null()) {
            map.insert("password".into(), serde_json::Value::String("(set)".into()));
        }
        map.insert("kind".into(), serde_json::Value::String(kind.to_owned()));
    }
    shown
}

/// Checks a channel name: what messages address it by.
pub fn check_name(name: &str) -> Result<(), InvalidInput> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid { Ok(()) } else { Err(InvalidInput::new("name", "1 to 32 of a-z, 0-9, `_` and `-`")) }
}

/// Checks settings before they are stored; a webhook's target must resolve, and to a
/// public address unless `allow_private`.
pub async fn check(settings: &ChannelSettings, allow_private: bool) -> Result<(), InvalidInput> {
    match settings {
        ChannelSettings::Smtp(smtp) => check_smtp(smtp),
        ChannelSettings::Webhook(webhook) => check_webhook_url(&webhook.url, allow_private).await.map(|_| ()),
    }
}

fn check_smtp(smtp: &SmtpSettings) -> Result<(), InvalidInput> {
    if smtp.host.is_empty() || smtp.host.len() > 253 || smtp.host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(InvalidInput::new("host", "a host name or address"));
    }
    if smtp.port == 0 {
        return Err(InvalidInput::new("port", "must be 1 to 65535"));
    }
    smtp.from
        .parse::<lettre::message::Mailbox>()
        .map_err(|_| InvalidInput::new("from", format!("`{}` is not an email address", smtp.from)))?;
    if smtp.username.is_some() != smtp.password.is_some() {
        return Err(InvalidInput::new("password", "give both username and password, or neither"));
    }
    Ok(())
}

/// Parses and checks a webhook URL: http(s), no credentials in it, and a target the
/// SSRF guard lets through.
pub async fn check_webhook_url(url: &str, allow_private: bool) -> Result<reqwest::Url, InvalidInput> {
    let parsed = reqwest::Url::parse(url).map_err(|e| InvalidInput::new("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(InvalidInput::new("url", "must be http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(InvalidInput::new("url", "must not carry credentials"));
    }
    let host = parsed.host_str().ok_or_else(|| InvalidInput::new("url", "has no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    ssrf::check_host(host, port, allow_private).await.map_err(|e| InvalidInput::new("url", e.to_string()))?;
    Ok(parsed)
}

/// A new Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp() -> SmtpSettings {
        SmtpSettings {
            host: "mail.example.com".into(),
            port: 587,
            tls: TlsMode::Starttls,
            username: None,
            password: None,
            from: "Tea House <hello@tea.example>".into(),
        }
    }

    #[tokio::test]
    async fn bad_settings_name_their_field() {
        let field = |r: Result<(), InvalidInput>| r.map_err(|e| e.field);
        assert_eq!(field(check(&ChannelSettings::Smtp(smtp()), false).await), Ok(()));
        let bad_from = SmtpSettings { from: "not an address".into(), ..smtp() };
        assert_eq!(field(check(&ChannelSettings::Smtp(bad_from), false).await), Err("from"));
        let half_credentials = SmtpSettings { username: Some("u".into()), ..smtp() };
        assert_eq!(field(check(&ChannelSettings::Smtp(half_credentials), false).await), Err("password"));
        for url in ["not a url", "ftp://x.example/", "http://127.0.0.1:9/hook", "http://user:pw@example.com/"] {
            let webhook = ChannelSettings::Webhook(WebhookSettings { url: url.into() });
            assert_eq!(field(check(&webhook, false).await), Err("url"), "{url}");
        }
        let local = ChannelSettings::Webhook(WebhookSettings { url: "http://127.0.0.1:9/hook".into() });
        assert_eq!(field(check(&local, true).await), Ok(()));
        assert_eq!(ChannelSettings::from_json("sms", serde_json::json!({})).map_err(|e| e.field), Err("kind"));
        assert!(check_name("sms").is_ok() && check_name("Bad Name").is_err());
        assert!(new_webhook_secret().starts_with("whsec_"));
    }
}
