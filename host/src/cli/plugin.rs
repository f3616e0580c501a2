//! `patron plugin …`: the plugin lifecycle from the command line, and scaffolding.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use patron_runtime::Manifest;

use crate::plugins::PluginHost;
use crate::plugins::dry_run::DryRunReport;
use crate::store::plugins::PluginInstall;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install a plugin (or upgrade it: a new version of an installed name).
    Install {
        /// A first-party plugin by name (`patron plugin available`), or the path of a
        /// component built for wasm32-wasip2 (then with --manifest).
        plugin: String,
        /// The component's manifest (`patron.toml` in the plugin crate); not needed for
        /// a first-party plugin.
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long)]
        shop: String,
        /// A capability to grant: log, clock, config or kv (repeatable). Default for a
        /// first-party plugin: every import its manifest declares.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// A JSON file with the install's configuration (`--config` is Patron's own TOML file).
        #[arg(long = "plugin-config")]
        plugin_config: Option<PathBuf>,
        /// Enable it right away (otherwise: dry-run it, then `plugin enable`).
        #[arg(long)]
        enable: bool,
    },
    /// Upgrade an installed plugin to a new version, keeping its config.
    Upgrade {
        /// A first-party plugin by name, or the path of a component (with --manifest).
        plugin: String,
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long)]
        shop: String,
        #[arg(long = "grant")]
        grants: Vec<String>,
    },
    /// List the first-party plugins built into this binary, installable by name.
    Available,
    /// List a shop's plugins with their versions, status and last error.
    List {
        #[arg(long)]
        shop: String,
    },
    Enable {
        name: String,
        #[arg(long)]
        shop: String,
    },
    Disable {
        name: String,
        #[arg(long)]
        shop: String,
    },
    /// Set an install's configuration from a JSON file (checked against the plugin's schema).
    Config {
        name: String,
        file: PathBuf,
        #[arg(long)]
        shop: String,
    },
    /// Return to the version active before the last upgrade.
    Rollback {
        name: String,
        #[arg(long)]
        shop: String,
    },
    Uninstall {
        name: String,
        #[arg(long)]
        shop: String,
    },
    /// Show what a segmenter or loyalty plugin would do over the shop, applying nothing.
    DryRun {
        name: String,
        #[arg(long)]
        shop: String,
    },
    /// Scaffold a plugin crate that builds with `cargo build --release --target wasm32-wasip2`.
    New {
        name: String,
        #[arg(long, value_enum)]
        world: WorldArg,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path to Patron's `sdk/` (default: the one this binary was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WorldArg {
    Segmenter,
    Loyalty,
    Recommender,
    Automation,
}

impl WorldArg {
    fn name(self) -> &'static str {
        match self {
            Self::Segmenter => "segmenter",
            Self::Loyalty => "loyalty",
            Self::Recommender => "recommender",
            Self::Automation => "automation",
        }
    }

    fn lib_template(self) -> &'static str {
        match self {
            Self::Segmenter => include_str!("../../../sdk/template/worlds/segmenter.rs"),
            Self::Loyalty => include_str!("../../../sdk/template/worlds/loyalty.rs"),
            Self::Recommender => include_str!("../../../sdk/template/worlds/recommender.rs"),
            Self::Automation => include_str!("../../../sdk/template/worlds/automation.rs"),
        }
    }
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Manifest::from_toml(&text)?)
}

/// The component and manifest a command names: a first-party plugin built into this
/// binary (by name, unless a file of that name exists), or a `.wasm` file and its manifest.
pub fn resolve_component(plugin: &str, manifest: Option<&Path>) -> anyhow::Result<(Vec<u8>, Manifest, bool)> {
    let path = Path::new(plugin);
    match manifest {
        Some(manifest) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok((bytes, read_manifest(manifest)?, false))
        }
        None if path.is_file() => anyhow::bail!("{plugin} is a file: pass its manifest with --manifest"),
        None => {
            let Some(embedded) = crate::embedded::plugin(plugin) else {
                if let Some(reason) = crate::embedded::plugins_missing() {
                    anyhow::bail!(
                        "this patron was built without its first-party plugins ({}); install a component file with --manifest",
                        reason.lines().next().unwrap_or(reason)
                    );
                }
                let names: Vec<&str> = crate::embedded::plugins().iter().map(|p| p.package).collect();
                anyhow::bail!("no first-party plugin named `{plugin}` (available: {})", names.join(", "));
            };
            Ok((embedded.wasm.to_vec(), embedded.manifest()?, true))
        }
    }
}

/// `patron plugin available`: each first-party plugin with its version, world and size.
pub fn print_available() -> anyhow::Result<()> {
    if let Some(reason) = crate::embedded::plugins_missing() {
        println!("this patron was built without its first-party plugins: {}", reason.lines().next().unwrap_or(reason));
        return Ok(());
    }
    for plugin in crate::embedded::plugins() {
        let manifest = plugin.manifest()?;
        println!(
            "{:<14} {:<8} {:<12} {:>4} KB  {}",
            manifest.name,
            manifest.version,
            manifest.world.name(),
            plugin.wasm.len().div_ceil(1024),
            manifest.description.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn print_install(install: &PluginInstall) {
    let previous = install.previous_version.as_deref().map(|v| format!(" (rollback to {v})")).unwrap_or_default();
    println!("{} {} [{}] {}{previous}", install.name, install.active_version, install.world, install.status);
    println!("  grants: {}", if install.grants.is_empty() { "none".into() } else { install.grants.join(", ") });
    println!("  versions: {}", install.versions.join(", "));
    if install.failures > 0 || install.last_error.is_some() {
        println!("  failures: {}; last error: {}", install.failures, install.last_error.as_deref().unwrap_or("-"));
    }
}

pub async fn run(db: crate::store::Db, cache_dir: PathBuf, command: PluginCommand) -> anyhow::Result<()> {
    let host = PluginHost::new(db.clone(), Some(cache_dir));
    let shop_of = |name: &str| {
        let (db, name) = (db.clone(), name.to_owned());
        async move { super::find_shop(&db, &name).await }
    };
    match command {
        PluginCommand::Install { plugin, manifest, shop, grants, plugin_config, enable } => {
            let shop = shop_of(&shop).await?;
            let (bytes, manifest, first_party) = resolve_component(&plugin, manifest.as_deref())?;
            let grants = if grants.is_empty() && first_party {
                manifest.imports.iter().map(|c| c.name().to_owned()).collect()
            } else {
                grants
            };
            let config = plugin_config.as_deref().map(read_json).transpose()?;
            let install = host.install(shop.id, bytes, manifest, grants, config, enable).await?;
            print_install(&install);
            if !enable {
                println!(
                    "installed disabled: `patron plugin dry-run {0} --shop …` shows what it would do; `patron plugin enable {0} --shop …` turns it on",
                    install.name
                );
            }
        }
        PluginCommand::Upgrade { plugin, manifest, shop, grants } => {
            let shop = shop_of(&shop).await?;
            let (bytes, manifest, _) = resolve_component(&plugin, manifest.as_deref())?;
            let current = db
                .plugin_install(shop.id, &manifest.name)
                .await?
                .with_context(|| format!("{} is not installed", manifest.name))?;
            let grants = if grants.is_empty() { current.grants.clone() } else { grants };
            let install = host.install(shop.id, bytes, manifest, grants, None, current.status == "enabled").await?;
            print_install(&install);
        }
        PluginCommand::Available => print_available()?,
        PluginCommand::List { shop } => {
            let shop = shop_of(&shop).await?;
            let installs = db.plugin_installs(shop.id).await?;
            if installs.is_empty() {
                println!("no plugins installed");
            }
            installs.iter().for_each(print_install);
        }
        PluginCommand::Enable { name, shop } => {
            print_install(&host.set_enabled(shop_of(&shop).await?.id, &name, true).await?)
        }
        PluginCommand::Disable { name, shop } => {
            print_install(&host.set_enabled(shop_of(&shop).await?.id, &name, false).await?)
        }
        PluginCommand::Config { name, file, shop } => {
            print_install(&host.configure(shop_of(&shop).await?.id, &name, read_json(&file)?).await?);
        }
        PluginCommand::Rollback { name, shop } => print_install(&host.rollback(shop_of(&shop).await?.id, &name).await?),
        PluginCommand::Uninstall { name, shop } => {
            host.uninstall(shop_of(&shop).await?.id, &name).await?;
            println!("uninstalled {name}");
        }
        PluginCommand::DryRun { name, shop } => {
            let shop = shop_of(&shop).await?;
            let report = crate::plugins::dry_run::run(&host, &shop, &name).await?;
            print_report(&report);
        }
        PluginCommand::New { name, world, dir, sdk } => run_offline(&name, world, dir, sdk)?,
    }
    Ok(())
}

fn print_report(report: &DryRunReport) {
    match report {
        DryRunReport::Segmenter(r) => {
            println!("{} over {} customers (nothing applied):", r.plugin, r.customers);
            for (segment, size) in &r.sizes {
                let joined = r.joined.get(segment).copied().unwrap_or(0);
                let samples = r.samples.get(segment).map(|s| s.join(", ")).unwrap_or_default();
                println!("  {segment:<24} {size:>8}  (+{joined})  e.g. {samples}");
            }
            for (segment, left) in &r.left {
                println!("  {segment:<24} would lose {left}");
            }
            if r.failed_batches > 0 {
                println!(
                    "  {} batches failed; last error: {}",
                    r.failed_batches,
                    r.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        DryRunReport::Loyalty(r) => {
            println!("{} (nothing applied):", r.plugin);
            println!(
                "  {} recent orders would earn {} points and {} coupons",
                r.orders_replayed, r.points_awarded, r.coupons_issued
            );
            println!("  {} members evaluated, {} would change tier:", r.members_evaluated, r.tier_changes);
            for (tier, count) in &r.tiers {
                println!("    {tier:<16} {count:>8}");
            }
            for sample in &r.samples {
                println!("    e.g. {sample}");
            }
            if r.failures > 0 {
                println!("  {} calls failed; last error: {}", r.failures, r.last_error.as_deref().unwrap_or("-"));
            }
        }
    }
}

/// Scaffolds a plugin crate; needs no database.
pub fn run_offline(name: &str, world: WorldArg, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    anyhow::ensure!(valid, "a plugin name is lower-case letters, digits and `-`");
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    anyhow::ensure!(!dir.exists(), "{} already exists", dir.display());
    let sdk = match sdk {
        Some(path) => path,
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
    };
    let sdk = sdk.canonicalize().with_context(|| format!("Patron's sdk/ is not at {} (pass --sdk)", sdk.display()))?;
    let sdk_spec = format!("{{ path = {:?} }}", sdk.display().to_string());
    // What the automation template's `on_event` waits for.
    let triggers = match world.name() {
        "automation" => {
            "# What on-event hears: event kinds and host triggers (order.placed, segment.entered:<name>, ...).\n\
                         triggers = [\"add_to_cart\", \"checkout_started\"]\n"
        }
        _ => "",
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{world}}", world.name())
            .replace("{{sdk}}", &sdk_spec)
            .replace("{{triggers}}\n", triggers)
    };
    std::fs::create_dir_all(dir.join("src"))?;
    let files = [
        ("Cargo.toml", include_str!("../../../sdk/template/Cargo.toml.tmpl")),
        ("patron.toml", include_str!("../../../sdk/template/patron.toml.tmpl")),
        ("README.md", include_str!("../../../sdk/template/README.md.tmpl")),
        (".gitignore", include_str!("../../../sdk/template/gitignore.tmpl")),
        ("src/lib.rs", world.lib_template()),
    ];
    for (path, template) in files {
        std::fs::write(dir.join(path), fill(template)).with_context(|| format!("writing {path}"))?;
    }
    println!("created {} ({} plugin); see its README.md", dir.display(), world.name());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scaffold_has_a_valid_manifest_and_an_automation_one_listens_to_real_kinds() {
        let root = std::env::temp_dir().join(format!("patron-scaffold-{}", crate::store::new_id()));
        for world in [WorldArg::Segmenter, WorldArg::Loyalty, WorldArg::Recommender, WorldArg::Automation] {
            let dir = root.join(world.name());
            run_offline("scaffolded", world, Some(dir.clone()), None).expect("scaffold");
            let text = std::fs::read_to_string(dir.join("patron.toml")).expect("manifest written");
            let manifest = patron_runtime::Manifest::from_toml(&text).expect("a valid manifest");
            let expected: &[&str] =
                if matches!(world, WorldArg::Automation) { &["add_to_cart", "checkout_started"] } else { &[] };
            assert_eq!(manifest.triggers, expected, "{}", world.name());
        }
        std::fs::remove_dir_all(&root).expect("clean up");
    }
}
