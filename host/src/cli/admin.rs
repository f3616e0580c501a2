//! `patron admin`: console users.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use clap::Subcommand;

use crate::console::users::create_user;
use crate::store::Db;
use crate::store::console::Role;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console user (or reset the role and password of an existing one).
    CreateUser {
        /// The shop, by name or id.
        #[arg(long)]
        shop: String,
        #[arg(long)]
        email: String,
        /// owner (everything), marketer (segments, journeys, coupons) or analyst (read-only, personal data masked).
        #[arg(long, value_parser = ["owner", "marketer", "analyst"])]
        role: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(db: Db, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser { shop, email, role, password_stdin } => {
            let shop = super::find_shop(&db, &shop).await?;
            let role = Role::parse(&role).context("unknown role")?;
            let password = if password_stdin { first_line()? } else { prompt_password()? };
            let (user, created) = create_user(&db, shop.id, &email, role, &password).await?;
            let verb = if created { "created" } else { "updated (sessions ended)" };
            println!("console user {} ({}) of `{}` {verb}", user.email, role.as_str(), shop.name);
            println!("sign in at <public url>/admin/");
            Ok(())
        }
    }
}

fn first_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Asks twice on the terminal, without echo where `stty` can turn it off.
fn prompt_password() -> anyhow::Result<String> {
    anyhow::ensure!(std::io::stdin().is_terminal(), "no terminal to prompt on: pass --password-stdin");
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let ask = |label: &str| -> anyhow::Result<String> {
        eprint!("{label}: ");
        std::io::stderr().flush()?;
        let line = first_line();
        if hidden {
            eprintln!();
        }
        line
    };
    let first = ask("Password");
    let second = ask("Repeat the password");
    if hidden {
        stty("echo");
    }
    let (first, second) = (first?, second?);
    anyhow::ensure!(first == second, "the two passwords differ");
    Ok(first)
}
