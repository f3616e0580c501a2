//! The plugins page, for owners only: the shop's installs with their status, version
//! and circuit breaker; install or upgrade from an uploaded component or from the
//! first-party plugins built into `patron`; a configuration form generated from the
//! manifest's JSON schema, checked on the server by the same [`PluginHost::configure`]
//! as `PUT /v1/plugins/{name}/config`, its errors shown beside the field; dry runs;
//! enable and disable; rollback; and failed jobs with a retry.
//!
//! Every change goes through the [`PluginHost`] functions the JSON API calls, and is
//! recorded in the audit log.
//!
//! An upload is a review step before the install: the component and manifest are kept
//! in this process's memory (at most [`PENDING_MAX`] for [`PENDING_TTL`]) while the owner
//! reads the manifest and ticks the imports to grant.
//!
//! [`PluginHost`]: crate::plugins::PluginHost
//! [`PluginHost::configure`]: crate::plugins::PluginHost::configure

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use patron_runtime::{BreakerState, Capability, Manifest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::Signed;
use super::owner::owner_only;
use super::views::{ConsoleError, ConsoleResult, page};
use super::wants_fragment;
use crate::api::state::AppState;
use crate::plugins::config_schema::SHOP_DEFAULTS;
use crate::plugins::dry_run::DryRunReport;
use crate::plugins::{PluginAdminError, dry_run};
use crate::store::jobs::JobStatus;
use crate::store::plugins::PluginInstall;

/// The largest component upload.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;
/// How long an upload waits for its review.
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// Uploads waiting for review in this process, across shops.
const PENDING_MAX: usize = 8;
/// Failed jobs listed.
const FAILED_JOBS: i64 = 50;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/plugins", get(list).post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)))
        .route("/admin/plugins/{name}", get(show))
        .route("/admin/plugins/{name}/install", post(install))
        .route("/admin/plugins/{name}/config", post(configure))
        .route("/admin/plugins/{name}/dry-run", post(run_dry))
        .route("/admin/plugins/{name}/status", post(set_status))
        .route("/admin/plugins/{name}/rollback", post(rollback))
        .route("/admin/jobs/{id}/retry", post(retry_job))
}

/// A component uploaded and waiting for its review.
#[derive(Clone)]
struct Pending {
    shop_id: i64,
    wasm: Vec<u8>,
    manifest: Manifest,
    at: Instant,
}

static PENDING: LazyLock<Mutex<HashMap<String, Pending>>> = LazyLock::new(Mutex::default);

fn pending() -> std::sync::MutexGuard<'static, HashMap<String, Pending>> {
    PENDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps an upload for its review; returns its token.
fn keep(upload: Pending) -> String {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let mut kept = pending();
    kept.retain(|_, p| p.at.elapsed() < PENDING_TTL);
    while kept.len() >= PENDING_MAX {
        let Some(oldest) = kept.iter().min_by_key(|(_, p)| p.at).map(|(k, _)| k.clone()) else { break };
        kept.remove(&oldest);
    }
    kept.insert(token.clone(), upload);
    token
}

/// The upload `token` of `shop_id`, if it is still kept.
fn kept(shop_id: i64, token: &str) -> Option<Pending> {
    pending().get(token).filter(|p| p.shop_id == shop_id && p.at.elapsed() < PENDING_TTL).cloned()
}

/// What an owner may be told about a failed plugin change; store failures are errors.
fn problem(error: PluginAdminError) -> Result<String, ConsoleError> {
    match error {
        PluginAdminError::NotInstalled(_) => Err(ConsoleError::NotFound),
        PluginAdminError::Store(crate::store::StoreError::NotFound(_)) => Err(ConsoleError::NotFound),
        PluginAdminError::Store(
            store @ (crate::store::StoreError::Conflict(_)
            | crate::store::StoreError::Plugin(_)
            | crate::store::StoreError::Invalid(_)),
        ) => Ok(store.to_string()),
        PluginAdminError::Store(store) => Err(ConsoleError::Store(store)),
        other => Ok(other.to_string()),
    }
}

fn word(signed: &Signed, key: &str) -> String {
    signed.locale.strings().get(key).copied().unwrap_or(key).to_owned()
}

async fn audit(state: &AppState, signed: &Signed, action: &str, target: &str, detail: &str) -> ConsoleResult<()> {
    Ok(state.db.audit(signed.shop.id, Some(&signed.user), &signed.user.email, action, Some(target), detail).await?)
}

/// `MAJOR.MINOR.PATCH` as numbers, for ordering versions.
fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

// ---------------------------------------------------------------------------- the list

#[derive(Serialize)]
struct InstallRow {
    name: String,
    world: String,
    version: String,
    status: String,
    breaker: &'static str,
    failures: i64,
    last_error: Option<String>,
    href: String,
}

/// Whether an install's breaker is open: tripped in the store, or open in this process.
fn breaker(state: &AppState, shop_id: i64, install: &PluginInstall) -> (&'static str, u32) {
    match state.plugins.breaker_state(shop_id, &install.name) {
        BreakerState::Open { .. } => ("open", 0),
        BreakerState::Closed { .. } if install.status == "tripped" => ("open", 0),
        BreakerState::Closed { consecutive_failures } => ("closed", consecutive_failures),
    }
}

#[derive(Serialize)]
struct AvailableRow {
    name: String,
    version: String,
    world: String,
    description: Option<String>,
    size_kb: usize,
    /// The version installed now, if any.
    installed: Option<String>,
    /// `install`, `upgrade`, `switch` (to an older version) or none (installed as is).
    action: Option<&'static str>,
}

fn available(installs: &[PluginInstall]) -> Vec<AvailableRow> {
    crate::embedded::plugins()
        .iter()
        .filter_map(|plugin| {
            let manifest = plugin.manifest().ok()?;
            let installed = installs.iter().find(|i| i.name == manifest.name).map(|i| i.active_version.clone());
            let action = match &installed {
                None => Some("install"),
                Some(v) if *v == manifest.version => None,
                Some(v) if version_key(&manifest.version) > version_key(v) => Some("upgrade"),
                Some(_) => Some("switch"),
            };
            Some(AvailableRow {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                world: manifest.world.name().to_owned(),
                description: manifest.description.clone(),
                size_kb: plugin.wasm.len().div_ceil(1024),
                installed,
                action,
            })
        })
        .collect()
}

#[derive(Serialize)]
struct JobRow {
    id: String,
    kind: String,
    plugin: Option<String>,
    attempts: i64,
    run_at: i64,
    last_error: Option<String>,
}

fn job_rows(jobs: Vec<JobStatus>) -> Vec<JobRow> {
    jobs.into_iter()
        .map(|job| JobRow {
            id: job.id.to_string(),
            plugin: job.payload.get("plugin").and_then(Value::as_str).map(ToOwned::to_owned),
            kind: job.kind,
            attempts: job.attempts,
            run_at: job.run_at,
            last_error: job.last_error,
        })
        .collect()
}

#[derive(Serialize)]
struct ListPage {
    installs: Vec<InstallRow>,
    available: Vec<AvailableRow>,
    embedded_missing: Option<String>,
    grants: Vec<&'static str>,
    jobs: Vec<JobRow>,
    notice: Option<String>,
    problem: Option<String>,
    upload_limit_mb: usize,
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

/// The notice of a change just made (`?done=…`, after a redirect).
fn notice(signed: &Signed, done: Option<&str>) -> Option<String> {
    let key = match done? {
        "installed" => "done_installed",
        "upgraded" => "done_upgraded",
        "config" => "done_config",
        "enabled" => "done_enabled",
        "disabled" => "done_disabled",
        "rolled_back" => "done_rolled_back",
        "job_retried" => "done_job_retried",
        _ => return None,
    };
    Some(word(signed, key))
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
) -> ConsoleResult<Response> {
    let shop_id = signed.shop.id;
    let installs = state.db.plugin_installs(shop_id).await?;
    let jobs = state.db.failed_jobs(shop_id, FAILED_JOBS).await?;
    let view = ListPage {
        available: available(&installs),
        embedded_missing: crate::embedded::plugins_missing().map(|r| r.lines().next().unwrap_or(r).to_owned()),
        installs: installs
            .iter()
            .map(|install| InstallRow {
                name: install.name.clone(),
                world: install.world.clone(),
                version: install.active_version.clone(),
                status: install.status.clone(),
                breaker: breaker(state, shop_id, install).0,
                failures: install.failures,
                last_error: install.last_error.clone(),
                href: format!("/admin/plugins/{}", install.name),
            })
            .collect(),
        grants: Capability::ALL.iter().map(|c| c.name()).collect(),
        jobs: job_rows(jobs),
        notice,
        problem,
        upload_limit_mb: UPLOAD_LIMIT / (1024 * 1024),
    };
    let mut response = page(signed, "plugins.html", "plugins", "/admin/plugins", view);
    *response.status_mut() = status;
    Ok(response)
}

async fn list(State(state): State<AppState>, signed: Signed, Query(done): Query<Done>) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let notice = notice(&signed, done.done.as_deref());
    list_page(&state, &signed, StatusCode::OK, notice, None).await
}

// ------------------------------------------------------------------ upload and install

#[derive(Serialize)]
struct ImportRow {
    name: &'static str,
    declared: bool,
}

#[derive(Serialize)]
struct ReviewPage {
    token: String,
    name: String,
    version: String,
    world: String,
    description: Option<String>,
    imports: Vec<ImportRow>,
    triggers: Vec<String>,
    schema: Option<String>,
    size_kb: usize,
    sha256: String,
    installed: Option<String>,
    install_url: String,
}

/// A manifest in TOML (`patron.toml`) or JSON.
fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let manifest =
        if text.trim_start().starts_with('{') { Manifest::from_json(text) } else { Manifest::from_toml(text) };
    let manifest = manifest.map_err(|e| e.to_string())?;
    manifest.validate().map_err(|e| e.to_string())?;
    Ok(manifest)
}

/// `POST /admin/plugins` (multipart: `wasm`, `manifest`): keeps the upload and shows its
/// manifest for review.
async fn upload(State(state): State<AppState>, signed: Signed, mut multipart: Multipart) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let mut wasm: Option<Vec<u8>> = None;
    let mut manifest_text: Option<String> = None;
    let outcome: Result<(), String> = async {
        while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
            let name = field.name().map(ToOwned::to_owned);
            match name.as_deref() {
                Some("wasm") => wasm = Some(field.bytes().await.map_err(|e| e.body_text())?.to_vec()),
                Some("manifest") => manifest_text = Some(field.text().await.map_err(|e| e.body_text())?),
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    let checked = outcome.and_then(|()| {
        let wasm = wasm.filter(|w| !w.is_empty()).ok_or_else(|| word(&signed, "upload_no_wasm"))?;
        if !wasm.starts_with(b"\0asm") {
            return Err(word(&signed, "upload_not_wasm"));
        }
        let text = manifest_text.filter(|m| !m.trim().is_empty()).ok_or_else(|| word(&signed, "upload_no_manifest"))?;
        Ok((wasm, parse_manifest(&text)?))
    });
    let (wasm, manifest) = match checked {
        Ok(upload) => upload,
        Err(reason) => return list_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, None, Some(reason)).await,
    };
    let installed = state.db.plugin_install(signed.shop.id, &manifest.name).await?.map(|i| i.active_version);
    let view = ReviewPage {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        world: manifest.world.name().to_owned(),
        description: manifest.description.clone(),
        imports: Capability::ALL
            .iter()
            .map(|c| ImportRow { name: c.name(), declared: manifest.imports.contains(c) })
            .collect(),
        triggers: manifest.triggers.clone(),
        schema: manifest.config_schema.as_ref().and_then(|s| serde_json::to_string_pretty(s).ok()),
        size_kb: wasm.len().div_ceil(1024),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm)),
        installed,
        install_url: format!("/admin/plugins/{}/install", manifest.name),
        token: keep(Pending { shop_id: signed.shop.id, wasm, manifest, at: Instant::now() }),
    };
    Ok(page(&signed, "plugin_review.html", "plugins", "/admin/plugins", view))
}

/// `POST /admin/plugins/{name}/install`: the reviewed upload (`pending`, with the ticked
/// `grant`s and `enable`), or the first-party plugin `name` with the imports its manifest
/// declares. An install of a name already installed is an upgrade: its configuration
/// is kept, and so is its being enabled.
async fn install(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let field = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let existing = state.db.plugin_install(signed.shop.id, &name).await?;
    let keep_enabled = existing.as_ref().is_some_and(|i| i.status == "enabled");
    let token = field("pending").map(ToOwned::to_owned);
    let (wasm, manifest, grants, enable) = match &token {
        Some(token) => {
            let Some(upload) = kept(signed.shop.id, token) else {
                let reason = word(&signed, "upload_expired");
                return list_page(&state, &signed, StatusCode::GONE, None, Some(reason)).await;
            };
            if upload.manifest.name != name {
                return Err(ConsoleError::NotFound);
            }
            let grants: Vec<String> = form.iter().filter(|(k, _)| k == "grant").map(|(_, v)| v.clone()).collect();
            (upload.wasm, upload.manifest, grants, field("enable").is_some() || keep_enabled)
        }
        None => {
            let embedded = crate::embedded::plugin(&name).ok_or(ConsoleError::NotFound)?;
            let manifest = embedded.manifest().map_err(|_| ConsoleError::NotFound)?;
            let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
            (embedded.wasm.to_vec(), manifest, grants, keep_enabled)
        }
    };
    let version = manifest.version.clone();
    let granted = if grants.is_empty() { "none".to_owned() } else { grants.join(", ") };
    match state.plugins.install(signed.shop.id, wasm, manifest, grants, None, enable).await {
        Ok(installed) => {
            if let Some(token) = &token {
                pending().remove(token);
            }
            let (action, done) =
                if existing.is_some() { ("plugin_upgraded", "upgraded") } else { ("plugin_installed", "installed") };
            let source = if token.is_some() { "upload" } else { "first-party" };
            let detail = format!("{version} ({source}); grants: {granted}; {}", installed.status);
            audit(&state, &signed, action, &format!("plugin {name}"), &detail).await?;
            Ok(Redirect::to(&format!("/admin/plugins/{name}?done={done}")).into_response())
        }
        Err(error) => {
            let reason = problem(error)?;
            list_page(&state, &signed, StatusCode::UNPROCESSABLE_ENTITY, None, Some(reason)).await
        }
    }
}

// ------------------------------------------------------------------------- one install

/// One field of the configuration form, made from a property of the manifest's schema.
#[derive(Serialize, Debug, PartialEq)]
struct ConfigField {
    name: String,
    /// `text`, `integer`, `number`, `boolean`, `select` or `json`.
    input: &'static str,
    /// What the input holds: the current setting, or what was submitted.
    value: String,
    /// For `select`: (value as JSON, label).
    options: Vec<(String, String)>,
    placeholder: String,
    description: Option<String>,
    required: bool,
    min: Option<String>,
    max: Option<String>,
    error: Option<String>,
}

/// The name of the form field of config property `name`.
const FIELD_PREFIX: &str = "cfg.";
/// The form field of the whole config, for a schema without properties.
const WHOLE: &str = "$";

fn input_kind(property: &Value) -> &'static str {
    if property.get("enum").is_some_and(Value::is_array) {
        return "select";
    }
    match property.get("type").and_then(Value::as_str) {
        Some("string") => "text",
        Some("integer") => "integer",
        Some("number") => "number",
        Some("boolean") => "boolean",
        _ => "json",
    }
}

/// A setting as its input shows it.
fn shown(kind: &str, value: &Value) -> String {
    match (kind, value) {
        ("select", value) => value.to_string(),
        (_, Value::String(text)) => text.clone(),
        ("json", value) => serde_json::to_string_pretty(value).unwrap_or_default(),
        (_, value) => value.to_string(),
    }
}

/// The properties of `schema` as form fields, with `config`'s values or the `submitted`
/// ones, and `errors` by field.
fn config_fields(
    schema: Option<&Value>,
    config: &Value,
    shop_defaults: [&str; 2],
    submitted: Option<&HashMap<String, String>>,
    errors: &HashMap<String, String>,
) -> Vec<ConfigField> {
    let properties = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        return vec![ConfigField {
            name: WHOLE.to_owned(),
            input: "json",
            value: submitted
                .and_then(|s| s.get(WHOLE).cloned())
                .unwrap_or_else(|| serde_json::to_string_pretty(config).unwrap_or_default()),
            options: Vec::new(),
            placeholder: "{}".to_owned(),
            description: None,
            required: false,
            min: None,
            max: None,
            error: errors.get(WHOLE).cloned(),
        }];
    };
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, property)| {
            let input = input_kind(property);
            let value = match submitted {
                Some(submitted) => submitted.get(name).cloned().unwrap_or_default(),
                None => config.get(name).map(|v| shown(input, v)).unwrap_or_default(),
            };
            let shop_default = SHOP_DEFAULTS.iter().position(|d| *d == name.as_str()).map(|i| shop_defaults[i]);
            let placeholder = match (property.get("default"), shop_default) {
                (Some(default), _) if input == "json" => default.to_string(),
                (Some(default), _) => shown("text", default),
                (None, Some(shop)) => shop.to_owned(),
                (None, None) => String::new(),
            };
            let options = property
                .get("enum")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .map(|v| (v.to_string(), v.as_str().map_or_else(|| v.to_string(), ToOwned::to_owned)))
                        .collect()
                })
                .unwrap_or_default();
            let bound = |key: &str| property.get(key).filter(|v| v.is_number()).map(ToString::to_string);
            ConfigField {
                name: name.clone(),
                input,
                value,
                options,
                placeholder,
                description: property.get("description").and_then(Value::as_str).map(ToOwned::to_owned),
                required: required.contains(&name.as_str()),
                min: bound("minimum"),
                max: bound("maximum"),
                error: errors.get(name).cloned(),
            }
        })
        .collect()
}

/// Why a submitted value could not be read, as a key of the console's words.
fn read_value(property: &Value, raw: &str) -> Result<Option<Value>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match input_kind(property) {
        "select" => serde_json::from_str(raw).map(Some).map_err(|_| "invalid_choice"),
        "boolean" => match raw {
            "true" => Ok(Some(Value::Bool(true))),
            "false" => Ok(Some(Value::Bool(false))),
            _ => Err("invalid_choice"),
        },
        "integer" => raw.parse::<i64>().map(|n| Some(json!(n))).map_err(|_| "not_whole_number"),
        "number" => match raw.parse::<f64>() {
            Ok(n) if n.is_finite() => {
                #[allow(clippy::cast_possible_truncation)] // only when integral and in range
                let integral = n.fract() == 0.0 && n.abs() < 9.0e15;
                Ok(Some(if integral { json!(n as i64) } else { json!(n) }))
            }
            _ => Err("not_a_number"),
        },
        "text" => Ok(Some(Value::String(raw.to_owned()))),
        _ => match serde_json::from_str::<Value>(raw) {
            Ok(value) => Ok(Some(value)),
            Err(_) if allows_string(property) => Ok(Some(Value::String(raw.to_owned()))),
            Err(_) => Err("not_json"),
        },
    }
}

fn allows_string(property: &Value) -> bool {
    match property.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    }
}

/// The config the form asks for: `current` with each schema property set from its field
/// (an empty field leaves the setting out, so its default applies); settings the schema
/// does not list are kept. Values that cannot be read are errors by field (word keys).
fn config_from_form(
    schema: Option<&Value>,
    current: &Value,
    submitted: &HashMap<String, String>,
) -> Result<Value, HashMap<String, &'static str>> {
    let properties = schema.and_then(|s| s.get("properties")).and_then(Value::as_object);
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        let raw = submitted.get(WHOLE).map_or("", String::as_str).trim();
        if raw.is_empty() {
            return Ok(json!({}));
        }
        return serde_json::from_str(raw).map_err(|_| HashMap::from([(WHOLE.to_owned(), "not_json")]));
    };
    let mut config: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let mut errors = HashMap::new();
    for (name, property) in properties {
        match read_value(property, submitted.get(name).map_or("", String::as_str)) {
            Ok(Some(value)) => {
                config.insert(name.clone(), value);
            }
            Ok(None) => {
                config.remove(name);
            }
            Err(key) => {
                errors.insert(name.clone(), key);
            }
        }
    }
    if errors.is_empty() { Ok(Value::Object(config)) } else { Err(errors) }
}

/// The form field a schema mismatch at `path` (`tiers[1].threshold`) belongs to.
fn field_of(path: &str, whole_form: bool) -> String {
    if whole_form || path == "$" {
        return WHOLE.to_owned();
    }
    path.split(['.', '[']).next().unwrap_or(path).to_owned()
}

#[derive(Serialize, Default)]
struct DryRunView {
    /// (word key, value).
    summary: Vec<(&'static str, String)>,
    /// Column word keys and rows.
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    samples: Vec<String>,
    failures: u64,
    last_error: Option<String>,
    /// Why there is no report.
    error: Option<String>,
}

fn dry_run_view(report: DryRunReport) -> DryRunView {
    match report {
        DryRunReport::Segmenter(r) => DryRunView {
            summary: vec![("dry_customers", r.customers.to_string())],
            columns: vec!["segment", "members", "joined", "left"],
            rows: r
                .sizes
                .iter()
                .map(|(segment, size)| {
                    let count = |m: &BTreeMap<String, u64>| m.get(segment).copied().unwrap_or(0).to_string();
                    vec![
                        segment.clone(),
                        size.to_string(),
                        format!("+{}", count(&r.joined)),
                        format!("−{}", count(&r.left)),
                    ]
                })
                .collect(),
            samples: r.samples.iter().map(|(segment, who)| format!("{segment}: {}", who.join(", "))).collect(),
            failures: r.failed_batches,
            last_error: r.last_error,
            error: None,
        },
        DryRunReport::Loyalty(r) => DryRunView {
            summary: vec![
                ("dry_orders", r.orders_replayed.to_string()),
                ("dry_points", r.points_awarded.to_string()),
                ("dry_coupons", r.coupons_issued.to_string()),
                ("dry_members", r.members_evaluated.to_string()),
                ("dry_tier_changes", r.tier_changes.to_string()),
            ],
            columns: vec!["tier", "members"],
            rows: r.tiers.iter().map(|(tier, n)| vec![tier.clone(), n.to_string()]).collect(),
            samples: r.samples,
            failures: r.failures,
            last_error: r.last_error,
            error: None,
        },
    }
}

#[derive(Serialize)]
struct PluginPage {
    name: String,
    world: String,
    version: String,
    previous_version: Option<String>,
    versions: Vec<String>,
    status: String,
    enabled: bool,
    grants: Vec<String>,
    breaker: &'static str,
    consecutive_failures: u32,
    failures: i64,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    description: Option<String>,
    fields: Vec<ConfigField>,
    form_error: Option<String>,
    config: String,
    /// The first-party version this binary has, if it differs from the active one.
    first_party: Option<AvailableRow>,
    dry_run: Option<DryRunView>,
    can_dry_run: bool,
    jobs: Vec<JobRow>,
    notice: Option<String>,
    problem: Option<String>,
}

/// What the page of one install shows besides the install itself.
#[derive(Default)]
struct Extras {
    submitted: Option<HashMap<String, String>>,
    errors: HashMap<String, String>,
    form_error: Option<String>,
    dry_run: Option<DryRunView>,
    notice: Option<String>,
    problem: Option<String>,
}

/// The manifest of an install's active version.
async fn active_manifest(state: &AppState, shop_id: i64, install: &PluginInstall) -> ConsoleResult<Option<Manifest>> {
    let version = state.db.plugin_version(shop_id, &install.name, &install.active_version).await?;
    Ok(version.and_then(|v| Manifest::from_json(&v.manifest).ok()))
}

async fn plugin_page(
    state: &AppState,
    signed: &Signed,
    name: &str,
    status: StatusCode,
    extras: Extras,
) -> ConsoleResult<Response> {
    let shop_id = signed.shop.id;
    let install = state.db.plugin_install(shop_id, name).await?.ok_or(ConsoleError::NotFound)?;
    let manifest = active_manifest(state, shop_id, &install).await?;
    let schema = manifest.as_ref().and_then(|m| m.config_schema.as_ref());
    let (breaker, consecutive_failures) = breaker(state, shop_id, &install);
    let jobs = state.db.failed_jobs(shop_id, FAILED_JOBS).await?;
    let jobs: Vec<JobStatus> =
        jobs.into_iter().filter(|j| j.payload.get("plugin").and_then(Value::as_str) == Some(name)).collect();
    let first_party =
        available(std::slice::from_ref(&install)).into_iter().find(|a| a.name == name && a.action.is_some());
    let world = install.world.clone();
    let view = PluginPage {
        fields: config_fields(
            schema,
            &install.config,
            [signed.shop.currency.as_str(), signed.shop.locale.as_str()],
            extras.submitted.as_ref(),
            &extras.errors,
        ),
        form_error: extras.form_error,
        config: serde_json::to_string_pretty(&install.config).unwrap_or_default(),
        description: manifest.as_ref().and_then(|m| m.description.clone()),
        can_dry_run: world == "segmenter" || world == "loyalty",
        enabled: install.status == "enabled" || install.status == "tripped",
        name: install.name,
        world,
        version: install.active_version,
        previous_version: install.previous_version,
        versions: install.versions,
        status: install.status,
        grants: install.grants,
        breaker,
        consecutive_failures,
        failures: install.failures,
        last_error: install.last_error,
        last_error_at: install.last_error_at,
        first_party,
        dry_run: extras.dry_run,
        jobs: job_rows(jobs),
        notice: extras.notice,
        problem: extras.problem,
    };
    let path = format!("/admin/plugins/{name}");
    let mut response = page(signed, "plugin.html", "plugins", &path, view);
    *response.status_mut() = status;
    Ok(response)
}

async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let extras = Extras { notice: notice(&signed, done.done.as_deref()), ..Extras::default() };
    plugin_page(&state, &signed, &name, StatusCode::OK, extras).await
}

/// `POST /admin/plugins/{name}/config`: fields `cfg.<property>`.
async fn configure(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let shop_id = signed.shop.id;
    let install = state.db.plugin_install(shop_id, &name).await?.ok_or(ConsoleError::NotFound)?;
    let manifest = active_manifest(&state, shop_id, &install).await?;
    let schema = manifest.as_ref().and_then(|m| m.config_schema.as_ref());
    let submitted: HashMap<String, String> =
        form.into_iter().filter_map(|(k, v)| k.strip_prefix(FIELD_PREFIX).map(|k| (k.to_owned(), v))).collect();
    let whole_form = schema.and_then(|s| s.get("properties")).and_then(Value::as_object).is_none_or(Map::is_empty);
    let invalid = |errors: HashMap<String, String>, form_error: Option<String>| Extras {
        submitted: Some(submitted.clone()),
        errors,
        form_error,
        problem: Some(word(&signed, "config_invalid")),
        ..Extras::default()
    };
    let config = match config_from_form(schema, &install.config, &submitted) {
        Ok(config) => config,
        Err(errors) => {
            let errors = errors.into_iter().map(|(field, key)| (field, word(&signed, key))).collect();
            let extras = invalid(errors, None);
            return plugin_page(&state, &signed, &name, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
        }
    };
    match state.plugins.configure(shop_id, &name, config.clone()).await {
        Ok(_) => {
            let before = install.config.as_object().cloned().unwrap_or_default();
            let after = config.as_object().cloned().unwrap_or_default();
            let mut changed: Vec<&String> =
                before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
            changed.sort_unstable();
            changed.dedup();
            let detail = if changed.is_empty() {
                "unchanged".to_owned()
            } else {
                format!("changed: {}", changed.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))
            };
            audit(&state, &signed, "plugin_configured", &format!("plugin {name}"), &detail).await?;
            Ok(Redirect::to(&format!("/admin/plugins/{name}?done=config")).into_response())
        }
        Err(PluginAdminError::Config(mismatch)) => {
            let field = field_of(&mismatch.path, whole_form);
            let at = field_of(&mismatch.path, false);
            let reason = if whole_form || mismatch.path == at {
                mismatch.reason.clone()
            } else {
                format!("{}: {}", mismatch.path, mismatch.reason)
            };
            let in_form = whole_form || schema.and_then(|s| s.get("properties")).and_then(|p| p.get(&field)).is_some();
            let extras = if in_form {
                invalid(HashMap::from([(field, reason)]), None)
            } else {
                invalid(HashMap::new(), Some(mismatch.to_string()))
            };
            plugin_page(&state, &signed, &name, StatusCode::UNPROCESSABLE_ENTITY, extras).await
        }
        Err(error) => {
            let extras = Extras { problem: Some(problem(error)?), ..Extras::default() };
            plugin_page(&state, &signed, &name, StatusCode::UNPROCESSABLE_ENTITY, extras).await
        }
    }
}

/// `POST /admin/plugins/{name}/dry-run`: what the install would do, applying nothing
/// (the `#dry-run` fragment for htmx).
async fn run_dry(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let view = match dry_run::run(&state.plugins, &signed.shop, &name).await {
        Ok(report) => dry_run_view(report),
        Err(error) => DryRunView { error: Some(problem(error)?), ..DryRunView::default() },
    };
    let detail = view.error.clone().unwrap_or_else(|| "ok".to_owned());
    audit(&state, &signed, "plugin_dry_run", &format!("plugin {name}"), &detail).await?;
    if wants_fragment(&headers, "dry-run") {
        let path = format!("/admin/plugins/{name}");
        return Ok(page(&signed, "plugin_dry_run.html", "plugins", &path, json!({ "name": name, "dry_run": view })));
    }
    let extras = Extras { dry_run: Some(view), ..Extras::default() };
    plugin_page(&state, &signed, &name, StatusCode::OK, extras).await
}

#[derive(Deserialize)]
struct StatusForm {
    enabled: String,
}

async fn set_status(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<StatusForm>,
) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let enabled = form.enabled == "true";
    let (action, done) = if enabled { ("plugin_enabled", "enabled") } else { ("plugin_disabled", "disabled") };
    let outcome = state.plugins.set_enabled(signed.shop.id, &name, enabled).await.map(|i| i.active_version);
    changed(&state, &signed, &name, outcome.map(|version| (action, version, done)), StatusCode::UNPROCESSABLE_ENTITY)
        .await
}

async fn rollback(State(state): State<AppState>, signed: Signed, Path(name): Path<String>) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let before = state.db.plugin_install(signed.shop.id, &name).await?.ok_or(ConsoleError::NotFound)?;
    let outcome = state.plugins.rollback(signed.shop.id, &name).await.map(|install| {
        ("plugin_rolled_back", format!("{} → {}", before.active_version, install.active_version), "rolled_back")
    });
    changed(&state, &signed, &name, outcome, StatusCode::CONFLICT).await
}

/// After a change to the install `name`, `(audit action, detail, notice)`: recorded in
/// the audit log and back to the install's page with the notice; or, refused, its page
/// with the problem and `refused` as status.
async fn changed(
    state: &AppState,
    signed: &Signed,
    name: &str,
    outcome: Result<(&'static str, String, &'static str), PluginAdminError>,
    refused: StatusCode,
) -> ConsoleResult<Response> {
    match outcome {
        Ok((action, detail, done)) => {
            audit(state, signed, action, &format!("plugin {name}"), &detail).await?;
            Ok(Redirect::to(&format!("/admin/plugins/{name}?done={done}")).into_response())
        }
        Err(error) => {
            let extras = Extras { problem: Some(problem(error)?), ..Extras::default() };
            plugin_page(state, signed, name, refused, extras).await
        }
    }
}

/// `POST /admin/jobs/{id}/retry`: a job that failed for good runs again.
async fn retry_job(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> ConsoleResult<Response> {
    owner_only(&signed)?;
    let id: i64 = id.parse().map_err(|_| ConsoleError::NotFound)?;
    match state.db.retry_failed_job(signed.shop.id, id).await {
        Ok(()) => {
            audit(&state, &signed, "job_retried", &format!("job {id}"), "").await?;
            Ok(Redirect::to("/admin/plugins?done=job_retried").into_response())
        }
        Err(crate::store::StoreError::Conflict(reason)) => {
            list_page(&state, &signed, StatusCode::CONFLICT, None, Some(reason)).await
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "additionalProperties": false, "required": ["unit"], "properties": {
            "unit": {"type": "integer", "minimum": 1, "default": 100},
            "rate": {"type": "number"},
            "mode": {"enum": ["strict", "lenient"]},
            "on": {"type": "boolean"},
            "currency": {"type": "string"},
            "tiers": {"type": "array"},
            "discount": {"type": ["string", "object"]}
        }})
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn fields_follow_the_schema_and_show_the_settings() {
        let config = json!({"unit": 1, "mode": "strict", "tiers": [1]});
        let fields = config_fields(Some(&schema()), &config, ["CNY", "zh-CN"], None, &HashMap::new());
        let by = |name: &str| fields.iter().find(|f| f.name == name).expect(name);
        assert_eq!(
            (by("unit").input, by("unit").value.as_str(), by("unit").placeholder.as_str()),
            ("integer", "1", "100")
        );
        assert!(by("unit").required && by("unit").min.as_deref() == Some("1"));
        assert_eq!(by("mode").input, "select");
        assert_eq!(by("mode").value, "\"strict\"");
        assert_eq!(by("mode").options[1], ("\"lenient\"".to_owned(), "lenient".to_owned()));
        assert_eq!(by("currency").placeholder, "CNY", "the shop's currency fills an unset currency");
        assert_eq!((by("tiers").input, by("on").input, by("discount").input), ("json", "boolean", "json"));
        // No properties: one field for the whole config.
        let whole = config_fields(None, &json!({"a": 1}), ["USD", "en"], None, &HashMap::new());
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].name, WHOLE);
    }

    #[test]
    fn forms_become_configs_and_unreadable_values_are_errors() {
        let current = json!({"unit": 5, "kept": true, "rate": 2});
        let config = config_from_form(
            Some(&schema()),
            &current,
            &form(&[
                ("unit", "100"),
                ("rate", ""),
                ("mode", "\"lenient\""),
                ("on", "false"),
                ("tiers", "[1, 2]"),
                ("discount", "free-shipping"),
            ]),
        )
        .expect("readable");
        assert_eq!(
            config,
            json!({"unit": 100, "kept": true, "mode": "lenient", "on": false, "tiers": [1, 2], "discount": "free-shipping"})
        );
        assert_eq!(
            config_from_form(Some(&schema()), &current, &form(&[("rate", "1.5")])).expect("ok")["rate"],
            json!(1.5)
        );
        let errors =
            config_from_form(Some(&schema()), &current, &form(&[("unit", "ten"), ("tiers", "[1,"), ("rate", "x")]))
                .expect_err("errors");
        assert_eq!(errors.get("unit"), Some(&"not_whole_number"));
        assert_eq!(errors.get("tiers"), Some(&"not_json"));
        assert_eq!(errors.get("rate"), Some(&"not_a_number"));
        assert_eq!(field_of("tiers[1].threshold", false), "tiers");
        assert_eq!(field_of("unit", false), "unit");
        assert_eq!(field_of("$", false), WHOLE);
    }

    #[test]
    fn versions_are_ordered_as_numbers() {
        assert!(version_key("0.10.0") > version_key("0.9.3"));
        assert!(version_key("1.0.0") > version_key("0.99.99"));
    }
}
