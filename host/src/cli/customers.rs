//! `patron customers merge|export|erase`: one person's records, from the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::find_shop;
use crate::config::Config;
use crate::store::Db;
use crate::store::merges::MergeReason;
use crate::store::privacy::Requester;
use crate::store::shops::Shop;

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Merge customer B into customer A (the survivor): orders, events, identities,
    /// points, coupons, tags, segments, messages and journeys move; B's id resolves to A.
    Merge {
        #[arg(long)]
        shop: String,
        /// The survivor: the store's customer id, or `id:<n>` for Patron's id.
        a: String,
        /// The customer folded into A.
        b: String,
    },
    /// Print everything Patron holds about one customer as JSON (a data subject access request).
    Export {
        #[arg(long)]
        shop: String,
        customer: String,
        /// Write the JSON to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase one customer's personal data, identities and events; orders and points stay
    /// as pseudonymous rows so the shop's revenue totals do not change.
    Erase {
        #[arg(long)]
        shop: String,
        customer: String,
        /// Confirm: erasure cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

async fn customer_id(db: &Db, shop: &Shop, reference: &str) -> anyhow::Result<i64> {
    let found = match reference.strip_prefix("id:") {
        Some(internal) => {
            let id: i64 = internal.parse().context("`id:` is followed by Patron's numeric id")?;
            db.resolve_customer(shop.id, id).await?
        }
        None => db.customer_by_external_id(shop.id, reference).await?.map(|c| c.id),
    };
    found.with_context(|| format!("no customer `{reference}` in `{}`", shop.name))
}

pub async fn run(db: Db, config: &Config, command: CustomersCommand) -> anyhow::Result<()> {
    match command {
        CustomersCommand::Merge { shop, a, b } => {
            let shop = find_shop(&db, &shop).await?;
            let (survivor, other) = (customer_id(&db, &shop, &a).await?, customer_id(&db, &shop, &b).await?);
            let outcome = db.merge_customers(shop.id, survivor, other, MergeReason::Manual).await?;
            let plugins = crate::plugins::PluginHost::new(db.clone(), Some(config.data_dir.join("plugin-cache")));
            let tier = crate::api::identity::after_merge(&db, &plugins, &shop, &outcome).await;
            if outcome.merged {
                println!("merged {} into {}", outcome.merged_id, outcome.survivor_id);
                println!("{}", serde_json::to_string_pretty(&outcome.moved)?);
            } else {
                println!("already one customer ({}): nothing moved", outcome.survivor_id);
            }
            if let Some(tier) = tier {
                println!("tier: {tier}");
            }
            Ok(())
        }
        CustomersCommand::Export { shop, customer, out } => {
            let shop = find_shop(&db, &shop).await?;
            let id = customer_id(&db, &shop, &customer).await?;
            let export = serde_json::to_string_pretty(&db.export_customer(shop.id, id, Requester::Cli).await?)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, export + "\n").with_context(|| format!("writing {}", path.display()))
                }
                None => {
                    println!("{export}");
                    Ok(())
                }
            }
        }
        CustomersCommand::Erase { shop, customer, yes } => {
            anyhow::ensure!(yes, "erasure cannot be undone: pass --yes to erase `{customer}`");
            let shop = find_shop(&db, &shop).await?;
            let id = customer_id(&db, &shop, &customer).await?;
            let erased = db.erase_customer(shop.id, id, Requester::Cli).await?;
            println!("{}", serde_json::to_string_pretty(&erased)?);
            Ok(())
        }
    }
}
