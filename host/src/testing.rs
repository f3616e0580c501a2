//! Test support: a fresh, migrated database per test on SQLite or PostgreSQL, a
//! macro that runs one test body on both, and one request through the API.
//!
//! PostgreSQL tests create a database `patron_t_<pid>_<n>` on the server named by
//! `PATRON_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! databases left by test processes that have exited are dropped on the next run.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

use crate::auth::NewShopKeys;
use crate::store::Db;
use crate::store::shops::{NewShop, Shop};

pub use crate::store::Backend;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
static NEXT: AtomicU64 = AtomicU64::new(0);
static STALE_DROPPED: OnceCell<()> = OnceCell::const_new();

fn postgres_admin_url() -> String {
    std::env::var("PATRON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// One request through `app`, with the shop's secret key when given and a JSON body when
/// given; the status and the JSON answer (`null` when the answer is not JSON).
pub async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: Option<serde_json::Value>,
) -> (axum::http::StatusCode, serde_json::Value) {
    use tower::ServiceExt;

    let mut request = axum::http::Request::builder().method(method).uri(uri);
    if let Some(secret) = secret {
        request = request.header("authorization", format!("Bearer {secret}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| axum::body::Body::from(b.to_string()));
    let response = app.clone().oneshot(request.body(body).expect("request")).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Installs and enables the first-party plugin `name` (its build for the tests, and its
/// manifest `plugins/<name>/patron.toml`) through `POST /v1/plugins` with `config`,
/// granting what the manifest imports; panics unless the install is created.
pub async fn install_first_party(app: &axum::Router, secret: &str, name: &str, config: serde_json::Value) {
    use base64::Engine as _;

    let path = format!("{}/../plugins/{name}/patron.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let manifest = serde_json::to_value(toml::from_str::<toml::Value>(&text).expect("manifest")).expect("json");
    let wasm = patron_runtime::testing::plugin_wasm(name).unwrap_or_else(|e| panic!("{name} plugin builds: {e}"));
    let body = serde_json::json!({
        "manifest": manifest,
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "grants": manifest["imports"],
        "config": config,
        "enable": true,
    });
    let (status, body) = call(app, "POST", "/v1/plugins", Some(secret), Some(body)).await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
}

/// A new, empty, migrated database on `backend`.
pub async fn fresh_db(backend: Backend) -> Db {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let url = match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("patron-tests");
            std::fs::create_dir_all(&dir).expect("create temp dir for test databases");
            let path = dir.join(format!("t_{pid}_{n}_{}.db", crate::store::new_id()));
            format!("sqlite://{}?mode=rwc", path.display())
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url();
            let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("PostgreSQL test server at {admin_url} is not reachable ({e}); `.ci/run` starts it")
            });
            STALE_DROPPED.get_or_init(|| drop_stale_databases(&admin_url)).await;
            let name = format!("patron_t_{pid}_{n}");
            admin.execute(format!("DROP DATABASE IF EXISTS {name}").as_str()).await.expect("drop old test database");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
            let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
            format!("{base}/{name}")
        }
    };
    Db::connect(&url).await.expect("connect and migrate the test database")
}

/// Drops the test databases of processes that no longer run.
async fn drop_stale_databases(admin_url: &str) {
    let Ok(mut admin) = PgConnection::connect(admin_url).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'patron_t_%'")
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.trim_start_matches("patron_t_").split('_').next().unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
        }
    }
}

/// A shop named `name` that accepts browser calls from `http://shop.test`.
pub async fn shop(db: &Db, name: &str) -> (Shop, NewShopKeys) {
    let mut new = NewShop::named(name);
    new.allowed_origins = vec!["http://shop.test".into()];
    db.create_shop(&new).await.expect("create test shop")
}

/// Runs one async test body against a fresh database on SQLite and on PostgreSQL:
/// `both_backends!(async fn name(db) { … });` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: $crate::store::Db) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::testing::fresh_db($crate::testing::Backend::Sqlite).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::testing::fresh_db($crate::testing::Backend::Postgres).await).await
            }
        }
    };
}

/// A real SMTP server on a local port (Python's aiosmtpd, `tests/fixtures/smtp_sink.py`),
/// recording every message it accepts; stopped on drop.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    out: std::path::PathBuf,
}

impl SmtpSink {
    pub fn start() -> Self {
        use std::io::BufRead;

        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let out = std::env::temp_dir().join(format!("patron-smtp-{}-{port}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut child = std::process::Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py"))
            .arg(port.to_string())
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (python3 -m pip install aiosmtpd standardwebhooks)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("sink starts");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start (is aiosmtpd installed?)");
        Self { child, port, out }
    }

    /// What it received: one JSON object per message (`rcpt_tos`, `subject`, `body`, …).
    pub fn received(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("sink record"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}
