//! Rendering: the templates (minijinja, embedded in the binary), the filters they use,
//! the chrome every signed-in page shares, error pages, and masking of personal data.
//!
//! One handler, two renderings: an htmx request for a fragment gets the fragment's
//! template; a full page load gets the page, whose template includes the same fragment.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::Serialize;

use super::auth::Signed;
use super::i18n::Locale;
use crate::api::error::InternalCause;
use crate::store::StoreError;
use crate::store::console::Role;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("definitions.html", include_str!("templates/definitions.html")),
    ("customers.html", include_str!("templates/customers.html")),
    ("customer_rows.html", include_str!("templates/customer_rows.html")),
    ("customer.html", include_str!("templates/customer.html")),
    ("tags.html", include_str!("templates/tags.html")),
    ("rfm.html", include_str!("templates/rfm.html")),
    ("rfm_cell.html", include_str!("templates/rfm_cell.html")),
    ("cohorts.html", include_str!("templates/cohorts.html")),
    ("segments.html", include_str!("templates/segments.html")),
    ("segment.html", include_str!("templates/segment.html")),
    ("users.html", include_str!("templates/users.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("period_form.html", include_str!("templates/period_form.html")),
    ("figure_cards.html", include_str!("templates/figure_cards.html")),
    ("period_head.html", include_str!("templates/period_head.html")),
    ("loyalty.html", include_str!("templates/loyalty.html")),
    ("plugins.html", include_str!("templates/plugins.html")),
    ("plugin_jobs.html", include_str!("templates/plugin_jobs.html")),
    ("plugin_review.html", include_str!("templates/plugin_review.html")),
    ("plugin.html", include_str!("templates/plugin.html")),
    ("plugin_dry_run.html", include_str!("templates/plugin_dry_run.html")),
    ("settings.html", include_str!("templates/settings.html")),
    ("recommendations.html", include_str!("templates/recommendations.html")),
];

static VIEWS: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(environment);

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_filter("money", money);
    env.add_filter("num", num);
    env.add_filter("pct", pct);
    env.add_filter("date", date);
    env.add_filter("datetime", datetime);
    Ok(env)
}

/// Minor units as an amount of `currency`, e.g. `$1,234.50`, `¥88`, `CHF 12.00`.
pub fn money(minor: Option<i64>, currency: &str) -> String {
    let Some(minor) = minor else { return "—".to_owned() };
    let exponent = crate::import::money::minor_unit_exponent(currency);
    let scale = 10_i64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let units = group(minor.unsigned_abs() / scale.unsigned_abs());
    let fraction = minor.unsigned_abs() % scale.unsigned_abs();
    let amount = if exponent == 0 { units } else { format!("{units}.{fraction:0width$}", width = exponent as usize) };
    match currency {
        "USD" => format!("{sign}${amount}"),
        "EUR" => format!("{sign}€{amount}"),
        "GBP" => format!("{sign}£{amount}"),
        "CNY" | "JPY" => format!("{sign}¥{amount}"),
        other => format!("{sign}{other} {amount}"),
    }
}

/// Digits grouped by thousands.
fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

pub fn num(value: Option<i64>) -> String {
    match value {
        Some(value) if value < 0 => format!("-{}", group(value.unsigned_abs())),
        Some(value) => group(value.unsigned_abs()),
        None => "—".to_owned(),
    }
}

/// A ratio as a percentage with one decimal, `—` when undefined.
pub fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

fn date(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "—".to_owned(), |t| t.format("%Y-%m-%d").to_string())
}

fn datetime(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "—".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// `j•••@example.com`: the first character of the local part and the domain.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// `•••• 67`: the last two digits only.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("•••• {tail}")
}

/// An email as `role` may see it.
pub fn shown_email(role: Role, email: Option<&str>) -> Option<String> {
    email.map(|e| if role.sees_personal_data() { e.to_owned() } else { mask_email(e) })
}

/// A phone as `role` may see it.
pub fn shown_phone(role: Role, phone: Option<&str>) -> Option<String> {
    phone.map(|p| if role.sees_personal_data() { p.to_owned() } else { mask_phone(p) })
}

/// What the layout shows around every signed-in page.
#[derive(Serialize)]
struct Chrome<'a> {
    shop: &'a str,
    currency: &'a str,
    email: &'a str,
    role: &'static str,
    is_owner: bool,
    may_edit: bool,
    masked: bool,
    csrf: &'a str,
    locale: &'static str,
    other_locale: &'static str,
    nav: &'a str,
    path: &'a str,
    charts: bool,
    htmx: bool,
}

/// Whether the vendored libraries made it into this build.
pub fn charts_available() -> bool {
    patron_console_assets::ECHARTS.is_some()
}

/// A signed-in page: `template` with `page`, inside the layout's chrome; `nav` marks the
/// current sidebar entry.
pub fn page(signed: &Signed, template: &str, nav: &str, path: &str, page: impl Serialize) -> Response {
    let other = match signed.locale {
        Locale::En => Locale::ZhCn,
        Locale::ZhCn => Locale::En,
    };
    let chrome = Chrome {
        shop: &signed.shop.name,
        currency: &signed.shop.currency,
        email: &signed.user.email,
        role: signed.user.role.as_str(),
        is_owner: signed.user.role.is_owner(),
        may_edit: signed.user.role.may_edit(),
        masked: !signed.user.role.sees_personal_data(),
        csrf: &signed.csrf,
        locale: signed.locale.tag(),
        other_locale: other.tag(),
        nav,
        path,
        charts: charts_available(),
        htmx: patron_console_assets::HTMX.is_some(),
    };
    render(template, context! { app => chrome, t => signed.locale.strings(), page => Value::from_serialize(&page) })
}

/// Renders `template` with `ctx`; a failure is a 500 whose cause is logged.
pub fn render(template: &str, ctx: Value) -> Response {
    let rendered = match &*VIEWS {
        Ok(env) => env.get_template(template).and_then(|t| t.render(ctx)).map_err(|e| format!("{e:#}")),
        Err(e) => Err(format!("console templates did not load: {e:#}")),
    };
    match rendered {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(cause) => {
            let mut response =
                (StatusCode::INTERNAL_SERVER_ERROR, "the console page could not be rendered").into_response();
            response.extensions_mut().insert(InternalCause(format!("template {template}: {cause}")));
            response
        }
    }
}

/// An HTML answer with the console's security headers.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    secure_headers(response.headers_mut());
    response
}

/// No framing, no caching of pages with personal data, scripts only from this origin.
pub fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
}

/// Why a console page could not be shown.
#[derive(Debug)]
pub enum ConsoleError {
    NotFound,
    Forbidden,
    Store(StoreError),
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(_) => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

pub type ConsoleResult<T = Response> = Result<T, ConsoleError>;

/// An error page in `locale` with `status`.
pub fn error_page(locale: Locale, status: StatusCode, title_key: &str, lead_key: &str) -> Response {
    let t = locale.strings();
    let mut response = render(
        "error.html",
        context! { t => t, locale => locale.tag(), status => status.as_u16(), title => t.get(title_key), lead => t.get(lead_key) },
    );
    *response.status_mut() = status;
    response
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => error_page(Locale::En, StatusCode::NOT_FOUND, "not_found", "not_found_lead"),
            Self::Forbidden => error_page(Locale::En, StatusCode::FORBIDDEN, "forbidden", "forbidden_lead"),
            Self::Store(error) => {
                let mut response = error_page(Locale::En, StatusCode::INTERNAL_SERVER_ERROR, "error", "error_lead");
                response.extensions_mut().insert(InternalCause(format!("{error:#}")));
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_load() {
        if let Err(e) = &*VIEWS {
            panic!("{e:#}");
        }
    }

    #[test]
    fn money_and_numbers_read_well() {
        assert_eq!(money(Some(123_450), "USD"), "$1,234.50");
        assert_eq!(money(Some(-5), "EUR"), "-€0.05");
        assert_eq!(money(Some(8800), "JPY"), "¥8,800");
        assert_eq!(money(Some(1200), "CHF"), "CHF 12.00");
        assert_eq!(money(None, "USD"), "—");
        assert_eq!(num(Some(1_234_567)), "1,234,567");
        assert_eq!(pct(Some(0.4567)), "45.7%");
    }

    #[test]
    fn personal_data_is_masked_for_analysts() {
        assert_eq!(mask_email("jane.doe@example.com"), "j•••@example.com");
        assert_eq!(mask_phone("+1 (555) 123-4567"), "•••• 67");
        assert_eq!(shown_email(Role::Analyst, Some("a@b.co")).as_deref(), Some("a•••@b.co"));
        assert_eq!(shown_email(Role::Marketer, Some("a@b.co")).as_deref(), Some("a@b.co"));
    }
}
