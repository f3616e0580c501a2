//! Headless Chromium for end-to-end tests, driven over WebDriver by a chromedriver this
//! process spawns on a free port, with a fresh profile per browser.
//!
//! Uses Debian's `/usr/bin/chromium` and `/usr/bin/chromedriver` (override with
//! `PATRON_CHROMIUM` / `PATRON_CHROMEDRIVER`). Without them the tests fail, saying how
//! to install them: a browser test that cannot run must not pass.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Chromium's flags: headless, sandboxless (we run as root in CI), and quiet — no
/// first-run UI, background networking, component updates, sync or QUIC.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// A running headless Chromium; the driver and profile go away on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the widget's browser tests need headless Chromium from Debian's packages. \
         Install it with `apt-get install -y chromium chromium-driver` (or set {env}).",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Browser {
    /// Starts chromedriver and a Chromium session. Panics with installation advice if
    /// either binary is missing.
    pub async fn start() -> Self {
        let chromium = binary("PATRON_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("PATRON_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port} within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let profile = std::env::temp_dir().join(format!("patron-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create a Chromium profile directory");
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({ "binary": chromium, "args": args }));
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("could not open a Chromium session through chromedriver: {e}"));
        Self { client, driver, profile }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Clicks the first element matching the CSS `selector`; panics naming it if there is none.
    pub async fn click(&self, selector: &str) {
        let element = self.client.find(Locator::Css(selector)).await.unwrap_or_else(|e| panic!("no {selector}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
    }

    /// Runs `script` (a function body; `return` a value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` until it returns something truthy, and returns that; panics with
    /// `what` after `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.js(script).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false)) && value != json!(0) && value != json!("");
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a Chrome DevTools Protocol command in the current tab (chromedriver's
    /// `goog/cdp/execute`), e.g. `Network.emulateNetworkConditions` or
    /// `Page.addScriptToEvaluateOnNewDocument`, and returns its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let command = Cdp { cmd: cmd.to_owned(), params };
        self.client.issue_cmd(command).await.unwrap_or_else(|e| panic!("DevTools command {cmd} failed: {e}"))
    }

    /// Takes the current tab off the network (`offline`) or puts it back.
    pub async fn set_offline(&self, offline: bool) {
        self.cdp("Network.enable", json!({})).await;
        let conditions = json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1});
        self.cdp("Network.emulateNetworkConditions", conditions).await;
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot failed: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session (the driver and profile are cleaned up on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A DevTools command for chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

/// `target/screenshots` of the workspace (or `$CARGO_TARGET_DIR/screenshots`).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    target.join("screenshots")
}
