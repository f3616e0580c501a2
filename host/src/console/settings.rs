//! Shop settings, for owners only: storefront origins, consent and DNT/GPC policy,
//! currency, locale and time zone (checked and stored by the same [`ShopUpdate`] as
//! `PATCH /v1/shop`, a mismatch shown on its field), and rotating the secret key (the
//! same [`Db::rotate_secret`] as `POST /v1/shop/rotate-key`: the new key is shown once,
//! the old one keeps working for the grace period chosen).
//!
//! [`Db::rotate_secret`]: crate::store::Db::rotate_secret

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

use super::auth::Signed;
use super::owner::owner_only;
use super::views::{ConsoleResult, page};
use crate::api::identity::MAX_GRACE_HOURS;
use crate::api::state::AppState;
use crate::store::StoreError;
use crate::store::shops::{Shop, ShopUpdate};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/settings", get(show).post(save)).route("/admin/settings/rotate-key", post(rotate_key))
}

/// The grace period offered by default, in hours.
const DEFAULT_GRACE_HOURS: i64 = 24;

#[derive(Serialize, Default)]
struct Values {
    origins: String,
    consent_required: bool,
    honor_dnt: bool,
    currency: String,
    locale: String,
    timezone: String,
}

impl From<&Shop> for Values {
    fn from(shop: &Shop) -> Self {
        Self {
            origins: shop.allowed_origins.join("\n"),
            consent_required: shop.consent_required,
            honor_dnt: shop.honor_dnt,
            currency: shop.currency.clone(),
            locale: shop.locale.clone(),
            timezone: shop.timezone.clone(),
        }
    }
}

#[derive(Serialize)]
struct SettingsPage {
    values: Values,
    publishable_key: String,
    /// The field a refused change names, and why.
    error_field: Option<String>,
    error: Option<String>,
    notice: Option<String>,
    /// A key just made: shown once.
    new_secret: Option<String>,
    previous_valid_until: Option<i64>,
    rotation_pending_until: Option<i64>,
    grace_hours: i64,
    max_grace_hours: i64,
    locales: Vec<&'static str>,
}

fn settings_page(signed: &Signed, status: StatusCode, view: SettingsPage) -> Response {
    let mut response = page(signed, "settings.html", "settings", "/admin/settings", view);
    *response.status_mut() = status;
    response
}

fn base_view(shop: &Shop) -> SettingsPage {
    let now = crate::store::now_ms();
    SettingsPage {
        values: Values::from(shop),
        publishable_key: shop.publishable_key.clone(),
        error_field: None,
        error: None,
        notice: None,
        new_secret: None,
        previous_valid_until: None,
        rotation_pending_until: shop.previous_secret_until.filter(|until| *until > now),
        grace_hours: DEFAULT_GRACE_HOURS,
        max_grace_hours: MAX_GRACE_HOURS,
        locales: vec!["en", "zh-CN"],
    }
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn show(State(state): State<AppState>, signed: Signed, Query(done): Query<Done>) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let shop = state.db.shop(signed.shop.id).await?.ok_or(super::views::ConsoleError::NotFound)?;
    let mut view = base_view(&shop);
    if done.done.as_deref() == Some("saved") {
        view.notice = signed.locale.strings().get("settings_saved").map(|s| (*s).to_owned());
    }
    Ok(settings_page(&signed, StatusCode::OK, view))
}

/// The update the form asks for: only what differs from the shop as it is.
fn update_from(form: &[(String, String)], shop: &Shop) -> (ShopUpdate, Values) {
    let field = |key: &str| form.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str());
    let checked = |key: &str| form.iter().any(|(k, v)| k == key && v == "on");
    let values = Values {
        origins: field("origins").to_owned(),
        consent_required: checked("consent_required"),
        honor_dnt: checked("honor_dnt"),
        currency: field("currency").trim().to_owned(),
        locale: field("locale").trim().to_owned(),
        timezone: field("timezone").trim().to_owned(),
    };
    let origins: Vec<String> =
        values.origins.split(['\n', ',']).map(str::trim).filter(|o| !o.is_empty()).map(ToOwned::to_owned).collect();
    let changed = |new: &str, old: &str| (new != old).then(|| new.to_owned());
    let update = ShopUpdate {
        allowed_origins: (origins != shop.allowed_origins).then_some(origins),
        consent_required: (values.consent_required != shop.consent_required).then_some(values.consent_required),
        honor_dnt: (values.honor_dnt != shop.honor_dnt).then_some(values.honor_dnt),
        currency: changed(&values.currency, &shop.currency),
        locale: changed(&values.locale, &shop.locale),
        timezone: changed(&values.timezone, &shop.timezone),
    };
    (update, values)
}

/// The names of the fields an update changes.
fn changed_fields(update: &ShopUpdate) -> Vec<&'static str> {
    let mut fields = Vec::new();
    for (name, set) in [
        ("allowed_origins", update.allowed_origins.is_some()),
        ("consent_required", update.consent_required.is_some()),
        ("honor_dnt", update.honor_dnt.is_some()),
        ("currency", update.currency.is_some()),
        ("locale", update.locale.is_some()),
        ("timezone", update.timezone.is_some()),
    ] {
        if set {
            fields.push(name);
        }
    }
    fields
}

async fn save(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let shop = state.db.shop(signed.shop.id).await?.ok_or(super::views::ConsoleError::NotFound)?;
    let (update, values) = update_from(&form, &shop);
    let refused = |field: &str, reason: String, values: Values| {
        let mut view = base_view(&shop);
        view.values = values;
        view.error_field = Some(field.to_owned());
        view.error = Some(reason);
        settings_page(&signed, StatusCode::UNPROCESSABLE_ENTITY, view)
    };
    let update = match update.validate() {
        Ok(update) => update,
        Err(invalid) => return Ok(refused(invalid.field, invalid.reason, values)),
    };
    if update.is_empty() {
        return Ok(Redirect::to("/admin/settings?done=saved").into_response());
    }
    match state.db.update_shop(shop.id, &update).await {
        Ok(_) => {}
        Err(StoreError::Conflict(reason)) => return Ok(refused("currency", reason, values)),
        Err(StoreError::Invalid(invalid)) => return Ok(refused(invalid.field, invalid.reason, values)),
        Err(error) => return Err(error.into()),
    }
    state.shops.forget(shop.id);
    let detail = changed_fields(&update).join(", ");
    state.db.audit(shop.id, Some(&signed.user), &signed.user.email, "shop_updated", Some("shop"), &detail).await?;
    Ok(Redirect::to("/admin/settings?done=saved").into_response())
}

#[derive(Deserialize)]
struct RotateForm {
    grace_hours: String,
}

async fn rotate_key(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<RotateForm>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let shop = state.db.shop(signed.shop.id).await?.ok_or(super::views::ConsoleError::NotFound)?;
    let grace_hours = match form.grace_hours.trim().parse::<i64>() {
        Ok(hours) if (0..=MAX_GRACE_HOURS).contains(&hours) => hours,
        _ => {
            let mut view = base_view(&shop);
            view.error_field = Some("grace_hours".to_owned());
            view.error = Some(format!("0 – {MAX_GRACE_HOURS}"));
            return Ok(settings_page(&signed, StatusCode::UNPROCESSABLE_ENTITY, view));
        }
    };
    let grace_ms = grace_hours * 3_600_000;
    let secret = state.db.rotate_secret(shop.id, grace_ms).await?;
    state.shops.forget(shop.id);
    let detail = format!("grace {grace_hours}h");
    state.db.audit(shop.id, Some(&signed.user), &signed.user.email, "key_rotated", Some("shop"), &detail).await?;
    let shop = state.db.shop(shop.id).await?.ok_or(super::views::ConsoleError::NotFound)?;
    let mut view = base_view(&shop);
    view.new_secret = Some(secret);
    view.previous_valid_until = Some(crate::store::now_ms() + grace_ms);
    view.grace_hours = grace_hours;
    Ok(settings_page(&signed, StatusCode::OK, view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Shop {
        Shop {
            id: 1,
            name: "s".into(),
            publishable_key: "pk".into(),
            secret_hash: String::new(),
            allowed_origins: vec!["https://a.test".into()],
            currency: "USD".into(),
            timezone: "UTC".into(),
            locale: "en".into(),
            consent_required: false,
            honor_dnt: true,
            previous_secret_hash: None,
            previous_secret_until: None,
            event_retention_days: 396,
            v1_tokens: false,
        }
    }

    #[test]
    fn only_what_changed_is_updated() {
        let form =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
        let same = form(&[
            ("origins", "https://a.test\n"),
            ("honor_dnt", "on"),
            ("currency", "USD"),
            ("locale", "en"),
            ("timezone", "UTC"),
        ]);
        assert!(update_from(&same, &shop()).0.is_empty());
        let changed = form(&[
            ("origins", "https://a.test\nhttps://b.test"),
            ("consent_required", "on"),
            ("currency", "USD"),
            ("locale", "zh-CN"),
            ("timezone", "UTC"),
        ]);
        let (update, _) = update_from(&changed, &shop());
        assert_eq!(changed_fields(&update), ["allowed_origins", "consent_required", "honor_dnt", "locale"]);
        assert_eq!(update.honor_dnt, Some(false), "an unticked box is off");
    }
}
