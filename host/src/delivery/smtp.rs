//! Email over SMTP (lettre, rustls). The message id is the outbox id, so a message
//! resent after a crash carries the same `Message-ID` and receivers can tell.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;
use super::channels::{SmtpSettings, TlsMode};
use super::templates::Rendered;

/// `List-Unsubscribe`: mail clients show their own unsubscribe button for it.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

/// `X-Patron-Purpose`: marketing or transactional, as the message was labelled.
#[derive(Debug, Clone)]
struct Purpose(String);

macro_rules! text_header {
    ($type:ident, $name:literal) => {
        impl Header for $type {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(ListUnsubscribe, "List-Unsubscribe");
text_header!(Purpose, "X-Patron-Purpose");

/// One email to send.
pub struct Email<'a> {
    /// The `Message-ID`, angle brackets included.
    pub message_id: String,
    pub to: &'a str,
    pub rendered: &'a Rendered,
    pub unsubscribe_url: &'a str,
    pub purpose: &'a str,
}

fn transport(settings: &SmtpSettings, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let tls = match settings.tls {
        TlsMode::None => Tls::None,
        TlsMode::Starttls | TlsMode::Tls => {
            let parameters = TlsParameters::new(settings.host.clone())
                .map_err(|e| SendError::Permanent(format!("smtp tls setup: {e}")))?;
            if settings.tls == TlsMode::Starttls { Tls::Required(parameters) } else { Tls::Wrapper(parameters) }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
        .port(settings.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Sends one email; a 5xx answer is permanent, anything else is worth retrying.
pub async fn send(settings: &SmtpSettings, email: &Email<'_>, timeout: Duration) -> Result<(), SendError> {
    let from: Mailbox = settings.from.parse().map_err(|e| SendError::Permanent(format!("smtp from: {e}")))?;
    let to: Mailbox = email.to.parse().map_err(|e| SendError::Permanent(format!("recipient address: {e}")))?;
    let message = Message::builder()
        .message_id(Some(email.message_id.clone()))
        .from(from)
        .to(to)
        .subject(email.rendered.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .header(ListUnsubscribe(format!("<{}>", email.unsubscribe_url)))
        .header(Purpose(email.purpose.to_owned()))
        .body(email.rendered.body.clone())
        .map_err(|e| SendError::Permanent(format!("building the email: {e}")))?;
    let transport = transport(settings, timeout)?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
        Err(e) => Err(SendError::Transient(format!("smtp: {e}"))),
    }
}
