//! What only owners see: the shop's console users (add one, or reset a role and
//! password) and the audit log of changes made through the console.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

use super::auth::Signed;
use super::users::{UserError, create_user};
use super::views::{ConsoleError, ConsoleResult, page};
use crate::api::state::AppState;
use crate::store::console::{AuditEntry, ConsoleUser, Role};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/users", get(users).post(save_user)).route("/admin/audit", get(audit))
}

#[derive(Serialize)]
struct UsersPage {
    users: Vec<ConsoleUser>,
    roles: Vec<&'static str>,
    /// A message after saving: done, or what was wrong.
    notice: Option<String>,
    error: bool,
}

pub(super) fn owner_only(signed: &Signed) -> ConsoleResult<()> {
    if signed.user.role.is_owner() { Ok(()) } else { Err(ConsoleError::Forbidden) }
}

async fn users_page(state: &AppState, signed: &Signed, notice: Option<String>, error: bool) -> ConsoleResult<Response> {
    let users = state.db.console_users(signed.shop.id).await?;
    let view = UsersPage { users, roles: Role::ALL.iter().map(|r| r.as_str()).collect(), notice, error };
    Ok(page(signed, "users.html", "users", "/admin/users", view))
}

async fn users(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    users_page(&state, &signed, None, false).await
}

#[derive(Deserialize)]
struct UserForm {
    email: String,
    role: String,
    password: String,
}

async fn save_user(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<UserForm>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let Some(role) = Role::parse(&form.role) else {
        return users_page(&state, &signed, Some(format!("`{}` is not a role", form.role)), true).await;
    };
    match create_user(&state.db, signed.shop.id, &form.email, role, &form.password).await {
        Ok((user, created)) => {
            let action = if created { "user_created" } else { "user_reset" };
            state
                .db
                .audit(signed.shop.id, Some(&signed.user), &signed.user.email, action, Some(&user.email), role.as_str())
                .await?;
            let saved = signed.locale.strings().get("user_saved").copied().unwrap_or_default().to_owned();
            users_page(&state, &signed, Some(saved), false).await
        }
        Err(UserError::Store(error)) => match error {
            crate::store::StoreError::Invalid(invalid) => {
                users_page(&state, &signed, Some(invalid.to_string()), true).await
            }
            other => Err(other.into()),
        },
        Err(error) => users_page(&state, &signed, Some(error.to_string()), true).await,
    }
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<AuditEntry>,
}

async fn audit(State(state): State<AppState>, signed: Signed) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let entries = state.db.audit_log(signed.shop.id, 200).await?;
    Ok(page(&signed, "audit.html", "audit", "/admin/audit", AuditPage { entries }))
}
