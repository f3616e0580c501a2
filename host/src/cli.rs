//! The `patron` command line.

pub mod admin;
pub mod customers;
pub mod journeys;
pub mod plugin;
pub mod predict;
pub mod recs;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, Settings};
use crate::demo::SeedOptions;
use crate::import::ImportKind;
use crate::store::Db;
use crate::store::shops::{NewShop, Shop};
use crate::widget::DemoStore;

#[derive(Debug, Parser)]
#[command(
    name = "patron",
    version,
    about = "A self-hosted CRM engine whose logic runs as sandboxed WebAssembly plugins"
)]
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
        /// Customers to seed into a new demo shop.
        #[arg(long, default_value_t = DEMO_CUSTOMERS, requires = "demo")]
        demo_customers: u64,
    },
    /// Manage shops.
    #[command(subcommand)]
    Shop(ShopCommand),
    /// Import customers, orders or products from a CSV (Patron or Shopify export) or NDJSON file.
    Import {
        kind: ImportKind,
        file: PathBuf,
        /// The shop, by name or id.
        #[arg(long)]
        shop: String,
    },
    /// Demo data.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Segments: recompute them with the enabled segmenter plugins, or show their sizes.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// Recommendations: rebuild the model, report what they earned, evaluate offline.
    #[command(subcommand)]
    Recs(recs::RecsCommand),
    /// Journeys: report what their messages did.
    #[command(subcommand)]
    Journeys(journeys::JourneysCommand),
    /// Predictions: fit the predictor plugins now, evaluate them on held-out history.
    #[command(subcommand)]
    Predict(predict::PredictCommand),
    /// Install and manage plugins, or scaffold a new one.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// One customer's identity and data: merge two records, export, erase.
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// The merchant console's users.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Run every enabled segmenter over all customers now, updating membership.
    Recompute {
        #[arg(long)]
        shop: String,
    },
    /// Show how many customers each segment holds.
    Sizes {
        #[arg(long)]
        shop: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Generate a realistic shop: products, customers with repeat purchases, browsing, carts.
    Seed {
        /// The shop to fill, by name or id; created if it does not exist.
        #[arg(long, default_value = DEMO_SHOP)]
        shop: String,
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        /// Random seed: the same seed gives the same shop.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Orders per customer on average (default: about 1.3), e.g. 5 for 1,000,000
        /// orders over 200,000 customers.
        #[arg(long, value_parser = orders_per_customer)]
        orders_per_customer: Option<f64>,
    },
}

/// A mean number of orders per customer: from 0.1 to 100.
fn orders_per_customer(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| (0.1..=100.0).contains(n))
        .ok_or_else(|| format!("`{text}` is not a number of orders from 0.1 to 100"))
}

/// A switch on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
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
        /// Respect Do-Not-Track and Global Privacy Control (the default; kept for scripts).
        #[arg(long, conflicts_with = "ignore_dnt")]
        honor_dnt: bool,
        /// Track browsers that send Do-Not-Track or Global Privacy Control (off by default;
        /// GPC is a legally binding opt-out in some jurisdictions).
        #[arg(long)]
        ignore_dnt: bool,
    },
    /// List shops.
    List,
    /// Change a shop's origins, consent and DNT/GPC policy, currency, locale or time zone
    /// (options left out stay as they are).
    Update {
        #[arg(long)]
        shop: String,
        /// Replaces the allowed storefront origins (repeatable, or comma-separated).
        #[arg(long = "origins", alias = "origin", value_delimiter = ',')]
        origins: Vec<String>,
        /// Send and store nothing from a browser before the shopper consents: true or false.
        #[arg(long)]
        consent_required: Option<bool>,
        /// Respect Do-Not-Track and Global Privacy Control: true or false.
        #[arg(long)]
        honor_dnt: Option<bool>,
        /// ISO 4217 code; refused once the shop has orders, coupons or products.
        #[arg(long)]
        currency: Option<String>,
        /// en or zh-CN (or a regional form, e.g. en-GB).
        #[arg(long)]
        locale: Option<String>,
        /// IANA time zone, e.g. Europe/Paris.
        #[arg(long = "time-zone", alias = "timezone")]
        time_zone: Option<String>,
    },
    /// Replace the shop's secret key; the old one keeps working for the grace period.
    RotateKey {
        #[arg(long)]
        shop: String,
        /// Hours the old key (and customer tokens signed with it) keep working.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(i64).range(0..=24 * 30))]
        grace_hours: i64,
    },
    /// Print the key customer tokens are signed with, or turn v1 tokens (no expiry) off.
    Tokens {
        #[arg(long)]
        shop: String,
        /// Accept v1 customer tokens (no expiry, keyed with the secret key): on or off.
        #[arg(long)]
        v1: Option<OnOff>,
    },
    /// Set how many days of raw behaviour events the shop keeps (default 396, 13 months).
    Retention {
        #[arg(long)]
        shop: String,
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=36_500))]
        event_days: i64,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let config = Config::resolve(self.settings, self.config.as_deref())?;
        if let Command::Plugin(plugin::PluginCommand::New { name, world, dir, sdk }) = self.command {
            return plugin::run_offline(&name, world, dir, sdk);
        }
        if let Command::Plugin(plugin::PluginCommand::Available) = self.command {
            return plugin::print_available();
        }
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&config.database_url)))?;
        match self.command {
            Command::Serve { demo, demo_customers } => serve(db, &config, demo.then_some(demo_customers)).await,
            Command::Shop(ShopCommand::Create {
                name,
                origins,
                currency,
                timezone,
                locale,
                consent_required,
                honor_dnt: _,
                ignore_dnt,
            }) => {
                let honor_dnt = !ignore_dnt;
                for origin in &origins {
                    validate_origin(origin)?;
                }
                crate::store::orders::validate_currency(&currency)?;
                let new =
                    NewShop { name, allowed_origins: origins, currency, timezone, locale, consent_required, honor_dnt };
                let (shop, keys) = db.create_shop(&new).await?;
                println!("created shop `{}` (id {})", shop.name, shop.id);
                println!("publishable key: {}", keys.publishable);
                println!("secret key:      {}   (shown once: store it in your shop's back end)", keys.secret);
                if let Some(token_key) = shop.token_key(config.token_secret.as_deref().map(str::as_bytes)) {
                    println!("token key:       {token_key}   (signs customer tokens: see README)");
                }
                Ok(())
            }
            Command::Import { kind, file, shop } => {
                let shop = find_shop(&db, &shop).await?;
                let summary = crate::import::import_file(&db, &shop, kind, &file, true).await?;
                println!("{summary}");
                Ok(())
            }
            Command::Demo(DemoCommand::Seed { shop, customers, seed, orders_per_customer }) => {
                let shop = find_or_create_shop(&db, &shop, &[]).await?;
                let options = SeedOptions { customers, seed, end: None, progress: true, orders_per_customer };
                let summary = crate::demo::seed(&db, &shop, &options).await?;
                println!("{summary}");
                Ok(())
            }
            Command::Segments(SegmentsCommand::Recompute { shop }) => {
                let shop = find_shop(&db, &shop).await?;
                recompute_segments(db, &config, &shop).await
            }
            Command::Segments(SegmentsCommand::Sizes { shop }) => {
                let shop = find_shop(&db, &shop).await?;
                for size in db.segment_sizes(shop.id, crate::store::now_ms()).await? {
                    println!("{:<28} {:>10}", size.segment, size.members);
                }
                Ok(())
            }
            Command::Recs(command) => recs::run(db, &config, command).await,
            Command::Journeys(command) => journeys::run(db, command).await,
            Command::Predict(command) => predict::run(db, &config, command).await,
            Command::Plugin(command) => plugin::run(db, config.data_dir.join("plugin-cache"), command).await,
            Command::Shop(ShopCommand::Update {
                shop,
                origins,
                consent_required,
                honor_dnt,
                currency,
                locale,
                time_zone,
            }) => {
                let shop = find_shop(&db, &shop).await?;
                let update = crate::store::shops::ShopUpdate {
                    allowed_origins: (!origins.is_empty()).then_some(origins),
                    consent_required,
                    honor_dnt,
                    currency,
                    locale,
                    timezone: time_zone,
                }
                .validate()?;
                anyhow::ensure!(!update.is_empty(), "nothing to change: see `patron shop update --help`");
                let shop = db.update_shop(shop.id, &update).await?;
                println!(
                    "updated shop `{}`: origins {}; consent required {}; honor DNT/GPC {}; {} {} {}",
                    shop.name,
                    shop.allowed_origins.join(","),
                    shop.consent_required,
                    shop.honor_dnt,
                    shop.currency,
                    shop.locale,
                    shop.timezone
                );
                Ok(())
            }
            Command::Customers(command) => customers::run(db, &config, command).await,
            Command::Shop(ShopCommand::RotateKey { shop, grace_hours }) => {
                let shop = find_shop(&db, &shop).await?;
                let secret = db.rotate_secret(shop.id, grace_hours * 3_600_000).await?;
                println!("new secret key: {secret}   (shown once: store it in your shop's back end)");
                let rotated = find_shop(&db, &shop.id.to_string()).await?;
                if let Some(token_key) = rotated.token_key(config.token_secret.as_deref().map(str::as_bytes)) {
                    println!("new token key:  {token_key}");
                }
                println!("the old key and tokens signed with it keep working for {grace_hours} hours");
                Ok(())
            }
            Command::Shop(ShopCommand::Tokens { shop, v1 }) => {
                let shop = find_shop(&db, &shop).await?;
                if let Some(v1) = v1 {
                    db.set_v1_tokens(shop.id, v1 == OnOff::On).await?;
                }
                let shop = find_shop(&db, &shop.id.to_string()).await?;
                match shop.token_key(config.token_secret.as_deref().map(str::as_bytes)) {
                    Some(key) => println!("token key: {key}"),
                    None => println!("no token secret configured: v2 tokens are signed with the secret key"),
                }
                println!("v1 tokens: {}", if shop.v1_tokens { "accepted" } else { "refused" });
                Ok(())
            }
            Command::Shop(ShopCommand::Retention { shop, event_days }) => {
                let shop = find_shop(&db, &shop).await?;
                db.set_event_retention(shop.id, event_days).await?;
                println!("`{}` keeps raw events for {event_days} days", shop.name);
                Ok(())
            }
            Command::Admin(command) => admin::run(db, command).await,
            Command::Shop(ShopCommand::List) => {
                for shop in db.shops().await? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        shop.id,
                        shop.name,
                        shop.publishable_key,
                        shop.allowed_origins.join(",")
                    );
                }
                Ok(())
            }
        }
    }
}

/// The shop's enabled plugins of `world` (at least one), with a host that caches
/// compiled components under the data directory.
pub(crate) async fn enabled_plugins(
    db: Db,
    config: &Config,
    shop: &Shop,
    world: patron_runtime::World,
) -> anyhow::Result<(crate::plugins::PluginHost, Vec<crate::plugins::Active>)> {
    let plugins = crate::plugins::PluginHost::new(db, Some(config.data_dir.join("plugin-cache")));
    let active = plugins.active(shop.id, world).await?;
    anyhow::ensure!(!active.is_empty(), "no {} plugin is enabled for `{}`", world.name(), shop.name);
    Ok((plugins, active))
}

/// A progress bar for one plugin's pass over the shop, counting `unit`.
pub(crate) fn pass_progress_bar(active: &crate::plugins::Active, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{msg}} {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(active.plugin.label().to_owned());
    bar
}

/// Moves `bar` as a pass reports (done, total).
pub(crate) fn advance(bar: &indicatif::ProgressBar) -> impl Fn(u64, u64) + Sync + '_ {
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }
}

async fn recompute_segments(db: Db, config: &Config, shop: &Shop) -> anyhow::Result<()> {
    let (plugins, segmenters) = enabled_plugins(db, config, shop, patron_runtime::World::Segmenter).await?;
    for active in segmenters {
        let bar = pass_progress_bar(&active, "customers");
        let progress = advance(&bar);
        let started = std::time::Instant::now();
        let report = plugins.segment_shop(shop, &active, true, &progress).await?;
        bar.finish_and_clear();
        println!("{} over {} customers in {:.1}s:", report.plugin, report.customers, started.elapsed().as_secs_f64());
        for (segment, size) in &report.sizes {
            let joined = report.joined.get(segment).copied().unwrap_or(0);
            println!("  {segment:<28} {size:>10}  (+{joined})");
        }
        for (segment, left) in &report.left {
            println!("  {segment:<28} left by {left}");
        }
        if let Some(error) = &report.last_error {
            println!("  {} failed batches; last error: {error}", report.failed_batches);
        }
    }
    Ok(())
}

/// The shop `patron serve --demo` and `patron demo seed` use by default.
pub const DEMO_SHOP: &str = "Demo Store";
/// Customers `patron serve --demo` seeds into an empty demo shop.
pub const DEMO_CUSTOMERS: u64 = 2_000;

async fn serve(db: Db, config: &Config, demo: Option<u64>) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let mut state = crate::AppState::new(db);
    state.metrics_token = config.metrics_token.clone().map(Into::into);
    state.token_secret = config.token_secret.as_deref().map(|secret| secret.as_bytes().into());
    state.rate_limits = crate::api::rate_limit::RateLimits::new(
        crate::api::rate_limit::Quota::per_second(config.rate_limit_per_key),
        crate::api::rate_limit::Quota::per_second(config.rate_limit_per_ip),
    );
    state.plugins = crate::plugins::PluginHost::new(state.db.clone(), Some(config.data_dir.join("plugin-cache")));
    if let Some(customers) = demo {
        state.demo = Some(demo_store(&state.plugins, &format!("http://{address}"), customers).await?);
        println!("demo storefront: http://{address}/demo/");
        let demo_shop = find_shop(&state.db, DEMO_SHOP).await?;
        let (email, password) = crate::console::users::demo_owner(&state.db, &demo_shop).await?;
        println!("console: http://{address}/admin/  (sign in as {email}, password {password})");
    }
    if !state.widget.is_built() {
        tracing::warn!(dir = %state.widget.describe(), "the storefront widget is not built: run web-widget/build.sh");
    }
    tracing::info!(%address, database = %redact(&config.database_url), "patron is serving");
    let (stop_scheduler, scheduler_stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = crate::scheduler::Scheduler::new(state.db.clone(), state.plugins.clone());
    let scheduler = tokio::spawn(scheduler.run_until(async {
        let _ = scheduler_stopped.await;
    }));
    state.delivery = crate::delivery::DeliveryConfig {
        public_url: config.public_url.clone().unwrap_or_else(|| format!("http://{address}")),
        allow_private_targets: config.webhook_allow_private,
        ..crate::delivery::DeliveryConfig::default()
    };
    let (stop_delivery, delivery_stopped) = tokio::sync::oneshot::channel::<()>();
    let delivery = crate::delivery::Worker::new(state.db.clone(), state.delivery.clone())?;
    let delivery = tokio::spawn(delivery.run_until(async {
        let _ = delivery_stopped.await;
    }));
    crate::serve(listener, crate::api::app_with_timeout(state, config.request_timeout), shutdown_signal()).await?;
    let _ = stop_scheduler.send(());
    let _ = stop_delivery.send(());
    let _ = scheduler.await;
    let _ = delivery.await;
    Ok(())
}

/// The demo shop (created and seeded with `customers` on first use, every first-party
/// plugin built into this binary installed, enabled and run over it: see
/// [`crate::demo::plugins`]) as the demo storefront presents it, signed in as its best
/// customer. What `patron serve --demo` calls.
pub async fn demo_store(
    plugins: &crate::plugins::PluginHost,
    origin: &str,
    customers: u64,
) -> anyhow::Result<DemoStore> {
    let db = plugins.db();
    let shop = find_or_create_shop(db, DEMO_SHOP, &[origin.to_owned()]).await?;
    if !shop.allowed_origins.iter().any(|o| o == origin) {
        anyhow::bail!(
            "the demo shop does not allow {origin}: start it on the address it was created for ({})",
            shop.allowed_origins.join(", ")
        );
    }
    if db.count_customers(shop.id).await? == 0 {
        let options = SeedOptions { customers, progress: true, ..SeedOptions::default() };
        println!("{}", crate::demo::seed(db, &shop, &options).await?);
    }
    println!("{}", crate::demo::plugins::install(plugins, &shop).await?);
    Ok(DemoStore::of_shop(db, &shop).await?)
}

/// The shop named `name`, created with `origins` (and its keys printed) if missing.
async fn find_or_create_shop(db: &Db, name: &str, origins: &[String]) -> anyhow::Result<Shop> {
    if let Some(shop) = db.shop_by_name(name).await? {
        return Ok(shop);
    }
    let new = NewShop { allowed_origins: origins.to_vec(), ..NewShop::named(name) };
    let (shop, keys) = db.create_shop(&new).await?;
    println!("created shop `{name}`: publishable key {}, secret key {} (shown once)", keys.publishable, keys.secret);
    Ok(shop)
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// A shop chosen on the command line by name or id.
pub async fn find_shop(db: &Db, name_or_id: &str) -> anyhow::Result<Shop> {
    if let Ok(id) = name_or_id.parse::<i64>()
        && let Some(shop) = db.shop(id).await?
    {
        return Ok(shop);
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
