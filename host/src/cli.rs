//! The `patron` command line.

pub mod admin;
pub mod journeys;
pub mod plugin;
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
    /// Install and manage plugins, or scaffold a new one.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
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
    },
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
        if let Command::Plugin(plugin::PluginCommand::New { name, world, dir, sdk }) = self.command {
            return plugin::run_offline(&name, world, dir, sdk);
        }
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", redact(&config.database_url)))?;
        match self.command {
            Command::Serve { demo } => serve(db, &config, demo).await,
            Command::Shop(ShopCommand::Create {
                name,
                origins,
                currency,
                timezone,
                locale,
                consent_required,
                honor_dnt,
            }) => {
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
                Ok(())
            }
            Command::Import { kind, file, shop } => {
                let shop = find_shop(&db, &shop).await?;
                let summary = crate::import::import_file(&db, &shop, kind, &file, true).await?;
                println!("{summary}");
                Ok(())
            }
            Command::Demo(DemoCommand::Seed { shop, customers, seed }) => {
                let shop = find_or_create_shop(&db, &shop, &[]).await?;
                let summary =
                    crate::demo::seed(&db, &shop, &SeedOptions { customers, seed, end: None, progress: true }).await?;
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
            Command::Plugin(command) => plugin::run(db, config.data_dir.join("plugin-cache"), command).await,
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
const DEMO_CUSTOMERS: u64 = 2_000;

async fn serve(db: Db, config: &Config, demo: bool) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let mut state = crate::AppState::new(db);
    state.metrics_token = config.metrics_token.clone().map(Into::into);
    state.rate_limits = crate::api::rate_limit::RateLimits::new(
        crate::api::rate_limit::Quota::per_second(config.rate_limit_per_key),
        crate::api::rate_limit::Quota::per_second(config.rate_limit_per_ip),
    );
    state.plugins = crate::plugins::PluginHost::new(state.db.clone(), Some(config.data_dir.join("plugin-cache")));
    if demo {
        state.demo = Some(demo_store(&state.plugins, &format!("http://{address}")).await?);
        println!("demo storefront: http://{address}/demo/");
        let demo_shop = find_shop(&state.db, DEMO_SHOP).await?;
        let (email, password) = crate::console::users::demo_owner(&state.db, &demo_shop).await?;
        println!("console: http://{address}/admin/  (sign in as {email}, password {password})");
    }
    if !state.widget.dir().join("patron.js").is_file() {
        tracing::warn!(dir = %state.widget.dir().display(), "the storefront widget is not built: run web-widget/build.sh");
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

/// The demo shop (created and seeded on first use, its recommender installed and
/// trained once built) as the demo storefront presents it, signed in as its best customer.
async fn demo_store(plugins: &crate::plugins::PluginHost, origin: &str) -> anyhow::Result<DemoStore> {
    let db = plugins.db();
    let shop = find_or_create_shop(db, DEMO_SHOP, &[origin.to_owned()]).await?;
    if !shop.allowed_origins.iter().any(|o| o == origin) {
        anyhow::bail!(
            "the demo shop does not allow {origin}: start it on the address it was created for ({})",
            shop.allowed_origins.join(", ")
        );
    }
    if db.count_customers(shop.id).await? == 0 {
        let options = SeedOptions { customers: DEMO_CUSTOMERS, progress: true, ..SeedOptions::default() };
        println!("{}", crate::demo::seed(db, &shop, &options).await?);
    }
    match crate::demo::recommender::built_component() {
        Some(path) => {
            let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            if let Some(report) = crate::demo::recommender::install(plugins, &shop, wasm).await? {
                println!("recommender trained over {} orders ({} bytes)", report.orders, report.model_bytes);
            }
        }
        None => println!(
            "no recommendation strips: build the recommender plugin (`{}`) and restart",
            crate::demo::recommender::BUILD_COMMAND
        ),
    }
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
