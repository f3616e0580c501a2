//! Signing in to the console: server-side sessions behind an HttpOnly cookie, CSRF
//! tokens on every unsafe request, and sign-in throttling after wrong passwords.
//!
//! The session cookie holds `<shop id>.<random token>`; only the token's SHA-256 is
//! stored, with the session's CSRF token and expiry. [`guard`] runs before every console
//! route: it resolves the session into a [`Signed`] and refuses any POST whose CSRF token
//! (form field `csrf` or header `X-CSRF-Token`, which htmx sends) is not the session's.
//! The sign-in form, before there is a session, is protected by a double-submit cookie.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::context;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::Locale;
use super::users::{verify_decoy, verify_password_blocking};
use super::views::{ConsoleError, error_page, render};
use crate::api::state::AppState;
use crate::store::console::ConsoleUser;
use crate::store::now_ms;
use crate::store::shops::Shop;

pub const SESSION_COOKIE: &str = "patron_console";
pub const SIGN_IN_COOKIE: &str = "patron_console_sign_in";
pub const LOCALE_COOKIE: &str = "patron_console_locale";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts without use.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// A session's expiry moves forward on use at most this often (one write per interval).
const RENEW_EVERY_MS: i64 = 5 * 60 * 1000;
/// Largest form body the console accepts.
const FORM_LIMIT: usize = 64 * 1024;
/// The one multipart form: a plugin upload, with its larger limit.
const UPLOAD_PATH: &str = "/admin/plugins";

/// The signed-in user of a console request, their shop and the page's language.
#[derive(Clone)]
pub struct Signed {
    pub user: ConsoleUser,
    pub shop: Arc<Shop>,
    pub csrf: String,
    pub locale: Locale,
    token_hash: String,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(sign_in_form).post(sign_in))
        .route("/admin/logout", post(sign_out))
        .route("/admin/locale", get(switch_locale))
}

/// A random token as 64 hex characters.
fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares without stopping at the first difference.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether cookies must be `Secure`: the public URL is https, or a proxy says the
/// request came over TLS.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.delivery.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value scoped to the console; `max_age` 0 deletes it.
fn set_cookie(name: &str, value: &str, max_age_secs: i64, same_site: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/admin; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The language of a page: the visitor's switch, else the shop's locale, else English.
fn locale(headers: &HeaderMap, shop: Option<&Shop>) -> Locale {
    match (cookie(headers, LOCALE_COOKIE), shop) {
        (Some(choice), _) => Locale::parse(&choice),
        (None, Some(shop)) => Locale::parse(&shop.locale),
        (None, None) => Locale::En,
    }
}

/// The session a cookie value names, if live; a use renews it.
async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, ConsoleError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let Some((shop_id, token)) = value.split_once('.') else { return Ok(None) };
    let Ok(shop_id) = shop_id.parse::<i64>() else { return Ok(None) };
    let token_hash = sha256_hex(token);
    let now = now_ms();
    let Some(session) = state.db.console_session(shop_id, &token_hash, now).await? else { return Ok(None) };
    let Some(shop) = state.db.shop(shop_id).await? else { return Ok(None) };
    if session.expires_at - now < SESSION_TTL_MS - RENEW_EVERY_MS {
        state.db.extend_console_session(shop_id, &token_hash, now + SESSION_TTL_MS).await?;
    }
    let locale = locale(headers, Some(&shop));
    Ok(Some(Signed { user: session.user, shop: Arc::new(shop), csrf: session.csrf_token, locale, token_hash }))
}

/// The value of field `name` in an `application/x-www-form-urlencoded` body (tokens are
/// hex, so no decoding is needed to compare them).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The value of the first part named `name` of a `multipart/form-data` body (the upload
/// form puts its token first, before the files).
fn multipart_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|window| window == needle)
    }
    let marker = format!("name=\"{name}\"");
    let after = &body[find(body, marker.as_bytes())? + marker.len()..];
    let value = &after[find(after, b"\r\n\r\n")? + 4..];
    std::str::from_utf8(&value[..find(value, b"\r\n")?]).ok()
}

/// Runs before every console route: resolves the session and checks the CSRF token of
/// every request that is not a GET or HEAD.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/admin/static/") {
        return next.run(request).await;
    }
    let signed = match resolve(&state, request.headers()).await {
        Ok(signed) => signed,
        Err(error) => return error.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let body = if matches!(parts.method, Method::GET | Method::HEAD) {
        body
    } else {
        let multipart = parts.uri.path() == UPLOAD_PATH
            && parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("multipart/form-data"));
        // Only an owner's session gets the larger limit read at all.
        let owner = signed.as_ref().is_some_and(|s| s.user.role.is_owner());
        let limit = if multipart && owner { super::plugins::UPLOAD_LIMIT } else { FORM_LIMIT };
        let Ok(bytes) = to_bytes(body, limit).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
        };
        let expected = if parts.uri.path() == "/admin/login" {
            cookie(&parts.headers, SIGN_IN_COOKIE)
        } else {
            signed.as_ref().map(|s| s.csrf.clone())
        };
        let submitted =
            parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned).or_else(|| {
                let field = if multipart { multipart_field(&bytes, "csrf") } else { form_field(&bytes, "csrf") };
                field.map(ToOwned::to_owned)
            });
        let valid = matches!((&expected, &submitted), (Some(e), Some(s)) if !e.is_empty() && same_token(e, s));
        if !valid {
            let locale = locale(&parts.headers, signed.as_ref().map(|s| &*s.shop));
            return error_page(locale, StatusCode::FORBIDDEN, "forbidden", "form_expired");
        }
        Body::from(bytes)
    };
    if let Some(signed) = signed {
        parts.extensions.insert(signed);
    }
    next.run(Request::from_parts(parts, body)).await
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    /// The signed-in user, or a way to the sign-in page (`HX-Redirect` for htmx).
    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(signed) = parts.extensions.get::<Signed>() {
            return Ok(signed.clone());
        }
        if parts.headers.contains_key("hx-request") {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.headers_mut().insert("hx-redirect", HeaderValue::from_static("/admin/login"));
            return Err(response);
        }
        Err(Redirect::to("/admin/login").into_response())
    }
}

async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if resolve(&state, &headers).await.ok().flatten().is_some() {
        return Redirect::to("/admin/").into_response();
    }
    sign_in_page(&state, &headers, StatusCode::OK, None, "")
}

/// The sign-in page with a fresh double-submit token, and `problem` (a rendered message).
fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    problem: Option<String>,
    email: &str,
) -> Response {
    let locale = locale(headers, None);
    let csrf = token();
    let mut response = render(
        "login.html",
        context! { t => locale.strings(), locale => locale.tag(), csrf => &csrf, problem => problem, email => email },
    );
    *response.status_mut() = status;
    let cookie = set_cookie(SIGN_IN_COOKIE, &csrf, 3600, "Strict", secure(state, headers));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct SignInForm {
    email: String,
    password: String,
}

async fn sign_in(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignInForm>) -> Response {
    match try_sign_in(&state, &headers, &form).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn try_sign_in(state: &AppState, headers: &HeaderMap, form: &SignInForm) -> Result<Response, ConsoleError> {
    let t = locale(headers, None).strings();
    let now = now_ms();
    let candidates = state.db.console_sign_in_candidates(&form.email).await?;
    if candidates.is_empty() {
        let password = form.password.clone();
        let _ = tokio::task::spawn_blocking(move || verify_decoy(&password)).await;
    }
    let mut throttled_until = None;
    let mut wrong = Vec::new();
    for candidate in candidates {
        if candidate.throttled_until > now {
            throttled_until = throttled_until.max(Some(candidate.throttled_until));
            continue;
        }
        if verify_password_blocking(form.password.clone(), candidate.password_hash.clone()).await {
            return open_session(state, headers, candidate.user).await;
        }
        wrong.push(candidate.user);
    }
    for user in &wrong {
        let until = state.db.record_failed_sign_in(user.shop_id, user.id, now).await?;
        if until > now {
            throttled_until = throttled_until.max(Some(until));
        }
    }
    let (status, message) = match throttled_until {
        Some(until) => {
            let minutes = ((until - now) + 59_999) / 60_000;
            let text = t.get("throttled").copied().unwrap_or_default().replace("{minutes}", &minutes.to_string());
            (StatusCode::TOO_MANY_REQUESTS, text)
        }
        None => (StatusCode::UNAUTHORIZED, t.get("wrong_credentials").copied().unwrap_or_default().to_owned()),
    };
    Ok(sign_in_page(state, headers, status, Some(message), &form.email))
}

async fn open_session(state: &AppState, headers: &HeaderMap, user: ConsoleUser) -> Result<Response, ConsoleError> {
    let session_token = token();
    let csrf = token();
    state.db.open_console_session(&user, &sha256_hex(&session_token), &csrf, now_ms() + SESSION_TTL_MS).await?;
    state.db.audit(user.shop_id, Some(&user), &user.email, "signed_in", None, "").await?;
    let secure = secure(state, headers);
    let mut response = Redirect::to("/admin/overview").into_response();
    let value = format!("{}.{session_token}", user.shop_id);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &value, SESSION_TTL_MS / 1000, "Lax", secure));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", 0, "Strict", secure));
    Ok(response)
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, signed: Signed) -> Response {
    if let Err(error) = state.db.close_console_session(signed.shop.id, &signed.token_hash).await {
        return ConsoleError::from(error).into_response();
    }
    let mut response = Redirect::to("/admin/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, "Lax", secure(&state, &headers)));
    response
}

#[derive(Deserialize)]
struct LocaleQuery {
    lang: String,
    next: Option<String>,
}

/// Remembers the visitor's language and goes back to a console page.
async fn switch_locale(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: axum::extract::Query<LocaleQuery>,
) -> Response {
    let locale = Locale::parse(&query.lang);
    let next = query.next.as_deref().filter(|n| n.starts_with("/admin") && !n.contains("//")).unwrap_or("/admin/");
    let mut response = Redirect::to(next).into_response();
    let cookie = set_cookie(LOCALE_COOKIE, locale.tag(), 365 * 24 * 3600, "Lax", secure(&state, &headers));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_form_fields_are_found() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; patron_console=7.abc; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("7.abc"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(form_field(b"email=x%40y&csrf=beef", "csrf"), Some("beef"));
        let multipart = b"--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nbeef\r\n--b\r\n\
            Content-Disposition: form-data; name=\"wasm\"; filename=\"p.wasm\"\r\n\r\n\0asm\r\n--b--\r\n";
        assert_eq!(multipart_field(multipart, "csrf"), Some("beef"));
        assert_eq!(multipart_field(multipart, "token"), None);
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("abc", "ab"));
    }

    #[test]
    fn cookies_are_http_only_and_scoped() {
        let value = set_cookie(SESSION_COOKIE, "1.x", 60, "Lax", true);
        let text = value.to_str().expect("ascii");
        assert!(
            text.contains("HttpOnly")
                && text.contains("SameSite=Lax")
                && text.contains("Secure")
                && text.contains("Path=/admin")
        );
        assert!(!set_cookie(SESSION_COOKIE, "1.x", 60, "Lax", false).to_str().expect("ascii").contains("Secure"));
    }
}
