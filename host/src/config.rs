//! Configuration: command-line flags over environment over a TOML file, in one struct.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Where the TOML file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "patron.toml";
pub const DEFAULT_DATA_DIR: &str = "patron-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Settings as they may appear in flags, environment or the file; unset is `None`.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Database URL (`sqlite://…` or `postgres://…`); defaults to SQLite under the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Directory for the embedded database and the plugin cache.
    #[arg(long, env = "PATRON_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP server listens on.
    #[arg(long, env = "PATRON_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Bearer token `/metrics` asks for; without one, `/metrics` answers loopback callers only.
    #[arg(long, env = "PATRON_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Requests per second one publishable key may make to the public endpoints (bursts of 5×).
    #[arg(long, env = "PATRON_RATE_LIMIT_PER_KEY", global = true)]
    pub rate_limit_per_key: Option<u32>,
    /// Requests per second one client IP may make to the public endpoints (bursts of 5×).
    #[arg(long, env = "PATRON_RATE_LIMIT_PER_IP", global = true)]
    pub rate_limit_per_ip: Option<u32>,
    /// Seconds one HTTP request may take before it is answered `503` (default 30).
    #[arg(long, env = "PATRON_REQUEST_TIMEOUT_SECS", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: Option<u64>,
    /// Where links in messages (unsubscribe, click tracking) point: this host as the public
    /// reaches it (default: `http://` and the listen address).
    #[arg(long, env = "PATRON_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Let webhooks reach private and loopback addresses (local sinks, tests).
    #[arg(long, env = "PATRON_WEBHOOK_ALLOW_PRIVATE", global = true, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: Option<bool>,
    /// A secret (at least 32 characters) from which each shop's customer-token key is
    /// derived, so a copy of the database alone cannot forge v2 customer tokens.
    #[arg(long, env = "PATRON_TOKEN_SECRET", global = true, hide_env_values = true)]
    pub token_secret: Option<String>,
}

impl Settings {
    /// Fills what `self` leaves unset from `other`.
    fn or(self, other: Settings) -> Settings {
        Settings {
            database_url: self.database_url.or(other.database_url),
            data_dir: self.data_dir.or(other.data_dir),
            listen: self.listen.or(other.listen),
            metrics_token: self.metrics_token.or(other.metrics_token),
            rate_limit_per_key: self.rate_limit_per_key.or(other.rate_limit_per_key),
            rate_limit_per_ip: self.rate_limit_per_ip.or(other.rate_limit_per_ip),
            request_timeout_secs: self.request_timeout_secs.or(other.request_timeout_secs),
            public_url: self.public_url.or(other.public_url),
            webhook_allow_private: self.webhook_allow_private.or(other.webhook_allow_private),
            token_secret: self.token_secret.or(other.token_secret),
        }
    }
}

/// The resolved configuration of one Patron process.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub metrics_token: Option<String>,
    /// Public endpoints' requests per second per publishable key and per client IP.
    pub rate_limit_per_key: u32,
    pub rate_limit_per_ip: u32,
    /// How long one HTTP request may take.
    pub request_timeout: Duration,
    /// Where links in messages point; `None` means the address the server listens on.
    pub public_url: Option<String>,
    pub webhook_allow_private: bool,
    /// See [`Settings::token_secret`].
    pub token_secret: Option<String>,
}

impl Config {
    /// Resolves flags and environment (already merged by clap) over the TOML file.
    pub fn resolve(from_cli_and_env: Settings, config_file: Option<&Path>) -> anyhow::Result<Self> {
        let file_settings = match config_file {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => read_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => Settings::default(),
        };
        let settings = from_cli_and_env.or(file_settings);
        let data_dir = settings.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match settings.database_url {
            Some(url) => url,
            None => {
                std::fs::create_dir_all(&data_dir)
                    .with_context(|| format!("creating data directory {}", data_dir.display()))?;
                format!("sqlite://{}?mode=rwc", data_dir.join("patron.db").display())
            }
        };
        let listen = match settings.listen {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse()?,
        };
        let metrics_token = settings.metrics_token.filter(|token| !token.is_empty());
        let request_timeout = match settings.request_timeout_secs {
            Some(0) => anyhow::bail!("request_timeout_secs must be at least 1"),
            Some(secs) => Duration::from_secs(secs),
            None => crate::api::timeout::DEFAULT_REQUEST_TIMEOUT,
        };
        let public_url = match settings.public_url.filter(|url| !url.is_empty()) {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                anyhow::bail!("public_url must start with http:// or https://, not `{url}`")
            }
            url => url.map(|url| url.trim_end_matches('/').to_owned()),
        };
        let token_secret = settings.token_secret.filter(|secret| !secret.is_empty());
        if token_secret.as_ref().is_some_and(|secret| secret.len() < 32) {
            anyhow::bail!("token_secret must be at least 32 characters");
        }
        Ok(Self {
            token_secret,
            database_url,
            data_dir,
            listen,
            request_timeout,
            metrics_token,
            public_url,
            webhook_allow_private: settings.webhook_allow_private.unwrap_or(false),
            rate_limit_per_key: settings.rate_limit_per_key.unwrap_or(crate::api::rate_limit::DEFAULT_PER_KEY),
            rate_limit_per_ip: settings.rate_limit_per_ip.unwrap_or(crate::api::rate_limit::DEFAULT_PER_IP),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_sqlite_is_the_default() {
        let dir = std::env::temp_dir().join(format!("patron-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("patron.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndatabase_url = \"postgres://file\"\nrequest_timeout_secs = 5\n",
        )
        .expect("write");
        let cli = Settings { database_url: Some("postgres://flag".into()), ..Settings::default() };
        let config = Config::resolve(cli, Some(&file)).expect("resolves");
        assert_eq!(config.database_url, "postgres://flag");
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.request_timeout, Duration::from_secs(5));

        let defaults = Settings { data_dir: Some(dir.join("data")), ..Settings::default() };
        let config = Config::resolve(defaults, Some(&dir.join("absent.toml")));
        assert!(config.is_err(), "an explicit config file that is missing is an error");
        std::fs::remove_file(&file).expect("cleanup");
        let config = Config::resolve(Settings { data_dir: Some(dir.join("data")), ..Settings::default() }, None)
            .expect("defaults");
        assert!(config.database_url.starts_with("sqlite://"));
        assert_eq!(config.request_timeout, crate::api::timeout::DEFAULT_REQUEST_TIMEOUT);
        assert!(dir.join("data").is_dir());
    }

    /// Which layers the re-executed test below runs with; unset in the parent run.
    const LAYER_UNDER_TEST: &str = "PATRON_CONFIG_TEST_LAYERS";

    /// Flags beat the environment, which beats the file. The environment is the process's,
    /// so the checks run in a child test process that is given its own.
    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file() {
        let Ok(layers) = std::env::var(LAYER_UNDER_TEST) else {
            for layers in ["file", "env"] {
                let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
                child.args(["--exact", "config::tests::a_flag_beats_the_environment_which_beats_the_file"]);
                child.env(LAYER_UNDER_TEST, layers);
                if layers == "env" {
                    child.env("PATRON_PUBLIC_URL", "https://env.example").env("PATRON_WEBHOOK_ALLOW_PRIVATE", "1");
                } else {
                    child.env_remove("PATRON_PUBLIC_URL").env_remove("PATRON_WEBHOOK_ALLOW_PRIVATE");
                }
                let output = child.output().expect("runs");
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(output.status.success(), "{layers}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
                assert!(stdout.contains("1 passed"), "the child ran the test: {stdout}");
            }
            return;
        };
        use clap::Parser;
        let dir = std::env::temp_dir().join(format!("patron-config-layers-{layers}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("patron.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://file\"\npublic_url = \"https://file.example/\"\nwebhook_allow_private = false\nrequest_timeout_secs = 7\n",
        )
        .expect("write");
        let resolve = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(["patron"].iter().chain(args).chain(&["shop", "list"]))
                .expect("parses");
            Config::resolve(cli.settings, Some(&file)).expect("resolves")
        };
        let plain = resolve(&[]);
        let flagged = resolve(&["--public-url", "https://flag.example", "--webhook-allow-private=false"]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(plain.request_timeout, Duration::from_secs(7), "what only the file sets comes from it");
        assert_eq!(flagged.public_url.as_deref(), Some("https://flag.example"));
        assert!(!flagged.webhook_allow_private);
        match layers.as_str() {
            "file" => {
                assert_eq!(plain.public_url.as_deref(), Some("https://file.example"), "trailing slash trimmed");
                assert!(!plain.webhook_allow_private);
            }
            _ => {
                assert_eq!(plain.public_url.as_deref(), Some("https://env.example"));
                assert!(plain.webhook_allow_private);
            }
        }
    }

    #[test]
    fn a_public_url_that_is_not_http_is_refused() {
        let settings = Settings {
            database_url: Some("postgres://unused".into()),
            public_url: Some("patron.example".into()),
            ..Settings::default()
        };
        let error = Config::resolve(settings, None).expect_err("refused");
        assert!(error.to_string().contains("public_url"), "{error}");
    }
}
