//! The `patron` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, Settings};
use crate::store::Db;
use crate::store::shops::{NewShop, Shop};

#[derive(Debug, Parser)]
#[command(name = "patron", version, about = "A self-hosted CRM engine whose logic runs as sandboxed WebAssembly plugins")]
pub struct Cli {
    /// TOML configuration file (default: ./patron.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        /// Seed a demo shop (if none exists) and serve the demo storefront at /demo/.
        #[arg(long)]
        demo: bool,
    },
    /// Manage shops.
    #[command(subcommand)]
    Shop(ShopCommand),
}

#[derive(Debug, Subcommand)]
pub enum ShopCommand {
    /// Create a shop and print its keys (the secret key is shown only once).
    Create {
        name: String,
        /// A storefront origin allowed to call the browser API, e.g. https://shop.example (repeatable).
        #[arg(long = "origin")]
        origins: Vec<String>,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Language of the storefront widget: en or zh-CN.
        #[arg(long, default_value = "en")]
        locale: String,
        /// Send and store nothing from a browser before the shopper consents.
        #[arg(long)]
        consent_required: bool,
        /// Respect Do-Not-Track and Global Privacy Control.
        #[arg(long)]
        honor_dnt: bool,
    },
    /// List shops.
    List,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let config = Config::resolve(self.settings, self.config.as_deref())?;
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&config.database_url)))?;
        match self.command {
            Command::Serve { demo } => serve(db, &config, demo).await,
            Command::Shop(ShopCommand::Create { name, origins, currency, timezone, locale, consent_required, honor_dnt }) => {
                for origin in &origins {
                    validate_origin(origin)?;
                }
                crate::store::orders::validate_currency(&currency)?;
                let new = NewShop { name, allowed_origins: origins, currency, timezone, locale, consent_required, honor_dnt };
                let (shop, keys) = db.create_shop(&new).await?;
                println!("created shop `{}` (id {})", shop.name, shop.id);
                println!("publishable key: {}", keys.publishable);
                println!("secret key:      {}   (shown once: store it in your shop's back end)", keys.secret);
                Ok(())
            }
            Command::Shop(ShopCommand::List) => {
                for shop in db.shops().await? {
                    println!("{}\t{}\t{}\t{}", shop.id, shop.name, shop.publishable_key, shop.allowed_origins.join(","));
                }
                Ok(())
            }
        }
    }
}

async fn serve(db: Db, config: &Config, _demo: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, database = %redact(&config.database_url), "patron is serving");
    let state = crate::AppState::new(db);
    crate::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// A shop chosen on the command line by name or id.
pub async fn find_shop(db: &Db, name_or_id: &str) -> anyhow::Result<Shop> {
    if let Ok(id) = name_or_id.parse::<i64>() {
        if let Some(shop) = db.shop(id).await? {
            return Ok(shop);
        }
    }
    db.shop_by_name(name_or_id).await?.with_context(|| format!("no shop named `{name_or_id}` (see `patron shop list`)"))
}

fn validate_origin(origin: &str) -> anyhow::Result<()> {
    let ok = origin == "*"
        || ((origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.trim_end_matches('/').contains(['?', '#'])
            && origin.trim_end_matches('/').matches('/').count() == 2);
    anyhow::ensure!(ok, "`{origin}` is not an origin such as https://shop.example");
    Ok(())
}

/// A database URL with any password removed, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}://{user}@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
