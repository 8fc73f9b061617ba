//! `bonnie keys`: the CURVE keys of `[curve] keys_dir`. `generate` makes a key pair for a role
//! on this host and allows it here; `allow` and `revoke` edit the broker's allow-list of a
//! role (one `<role>s/<name>.pub` file per key); `list` shows both.

use anyhow::{Context as _, bail};
use bonnie_core::{
    Config,
    keys::{self, KeyDir, Role},
    transport,
};
use clap::Subcommand;
use serde_json::json;

/// `bonnie keys ...`.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a key pair for a role on this host: ROLE.key (mode 0600) in the keys folder, and
    /// allow its public key here (ROLEs/NAME.pub); prints the public key to allow on the
    /// broker's host if that is another
    Generate {
        /// broker, dealer, collector, worker or admin
        role: String,
        /// Whom the key is for: the IMAP host for a dealer or collector (the broker files the
        /// dealer's notifications under it, and gives the collector that host's jobs only),
        /// any name for a worker or an admin [default: this host's name]
        name: Option<String>,
        /// Replace a key pair that exists (peers using the old one are shut out)
        #[arg(long)]
        force: bool,
        /// Print the result as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Allow a public key in a role on this (the broker's) host; the broker reads it on
    /// SIGHUP or at its next start
    Allow {
        /// dealer, collector, worker or admin
        role: String,
        /// Whom the key is for (for a dealer or collector: its IMAP host)
        name: String,
        /// The public key (40 characters of Z85), as `bonnie keys generate` printed it; Z85
        /// has `-` in its alphabet, so a key may start with one
        #[arg(allow_hyphen_values = true)]
        public_key: String,
    },
    /// Remove a key from a role's allow-list; after SIGHUP the broker refuses its messages
    Revoke {
        /// dealer, collector, worker or admin
        role: String,
        /// The name it was allowed under
        name: String,
    },
    /// This host's key pairs and the keys allowed per role
    List {
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
}

const RELOAD: &str = "The broker reads the allowed keys at its start and on SIGHUP (kill -HUP <pid of bonnie-broker>).";

/// The audit action and parameters of a command that changes who may reach the broker (every
/// one but `list`). Secret keys are never among them; public keys are.
pub fn audited(command: &KeysCommand) -> Option<(&'static str, serde_json::Value)> {
    match command {
        KeysCommand::Generate {
            role, name, force, ..
        } => Some((
            "keys generate",
            json!({ "role": role, "name": name, "force": force }),
        )),
        KeysCommand::Allow {
            role,
            name,
            public_key,
        } => Some((
            "keys allow",
            json!({ "role": role, "name": name, "public_key": public_key.trim() }),
        )),
        KeysCommand::Revoke { role, name } => {
            Some(("keys revoke", json!({ "role": role, "name": name })))
        }
        KeysCommand::List { .. } => None,
    }
}

/// Runs a `bonnie keys` command.
pub fn run(config: &Config, command: &KeysCommand) -> anyhow::Result<()> {
    let dir = KeyDir::new(&config.curve);
    match command {
        KeysCommand::Generate {
            role,
            name,
            force,
            json,
        } => generate(config, &dir, role, name.as_deref(), *force, *json),
        KeysCommand::Allow {
            role,
            name,
            public_key,
        } => {
            let role = Role::parse(role)?;
            keys::check_name(name)?;
            let file = dir.allowed_file(role, name);
            KeyDir::write_public(&file, public_key.trim(), &format!("{role} {name}"))?;
            println!("Allowed {role} {name:?}: {}.", file.display());
            println!("{RELOAD}");
            Ok(())
        }
        KeysCommand::Revoke { role, name } => {
            let role = Role::parse(role)?;
            keys::check_name(name)?;
            let file = dir.allowed_file(role, name);
            std::fs::remove_file(&file)
                .with_context(|| format!("no {role} key named {name:?} ({})", file.display()))?;
            println!("Revoked {role} {name:?}: {} removed.", file.display());
            println!("{RELOAD}");
            Ok(())
        }
        KeysCommand::List { json } => list(&dir, *json),
    }
}

fn generate(
    config: &Config,
    dir: &KeyDir,
    role: &str,
    name: Option<&str>,
    force: bool,
    json: bool,
) -> anyhow::Result<()> {
    if !transport::has_curve() {
        bail!("this build of libzmq has no CURVE");
    }
    let pair = transport::generate_keypair().context("cannot make a key pair")?;
    if role == "broker" {
        let file = dir.pair_file("broker");
        KeyDir::write_pair(&file, &pair, "the broker", force)
            .with_context(|| format!("cannot write {} (--force replaces it)", file.display()))?;
        let public = dir.broker_public_file();
        KeyDir::write_public(&public, &pair.public, "the broker")?;
        if json {
            println!(
                "{}",
                json!({"role": "broker", "key_file": file, "public_file": public, "public_key": pair.public})
            );
        } else {
            println!("Broker key pair written to {} (0600).", file.display());
            println!("Its public key, {}:\n  {}", public.display(), pair.public);
            println!(
                "Every dealer, collector, worker and admin host needs this file as broker.pub in its keys folder."
            );
        }
        return Ok(());
    }
    let role = Role::parse(role)?;
    let name = match name {
        Some(name) => name.to_string(),
        None => match role {
            Role::Dealer => config.dealer.host_name(),
            Role::Collector => config.collector.host_name(),
            Role::Worker | Role::Admin => bonnie_core::config::system_host_name(),
        },
    };
    keys::check_name(&name)?;
    let file = dir.pair_file(role.name());
    KeyDir::write_pair(&file, &pair, &format!("{role} {name}"), force)
        .with_context(|| format!("cannot write {} (--force replaces it)", file.display()))?;
    let allowed = dir.allowed_file(role, &name);
    KeyDir::write_public(&allowed, &pair.public, &format!("{role} {name}"))?;
    if json {
        println!(
            "{}",
            json!({"role": role.name(), "name": name, "key_file": file, "allowed_file": allowed, "public_key": pair.public})
        );
    } else {
        println!(
            "{role} key pair for {name:?} written to {} (0600).",
            file.display()
        );
        println!("Allowed here as {}.", allowed.display());
        println!("On the broker's host, if it is another, allow it with:");
        println!("  bonnie keys allow {role} {name} {}", pair.public);
        println!("{RELOAD}");
    }
    Ok(())
}

fn list(dir: &KeyDir, json: bool) -> anyhow::Result<()> {
    let mut own = Vec::new();
    for who in ["broker", "dealer", "collector", "worker", "admin"] {
        let file = dir.pair_file(who);
        if file.exists() {
            let entry = match KeyDir::read_pair(&file) {
                Ok(pair) => json!({"role": who, "key_file": file, "public_key": pair.public}),
                Err(e) => json!({"role": who, "key_file": file, "error": e.to_string()}),
            };
            own.push(entry);
        }
    }
    let mut allowed = Vec::new();
    for role in Role::ALL {
        allowed.extend(dir.allowed(role)?);
    }
    if json {
        println!(
            "{}",
            json!({"keys_dir": dir.path(), "own": own, "allowed": allowed})
        );
        return Ok(());
    }
    println!("Keys folder: {}", dir.path().display());
    println!(
        "This host's key pairs: {}",
        if own.is_empty() { "none" } else { "" }
    );
    for entry in &own {
        println!(
            "  {:<9} {}  {}",
            entry["role"].as_str().unwrap_or("?"),
            entry["public_key"]
                .as_str()
                .or(entry["error"].as_str())
                .unwrap_or(""),
            entry["key_file"].as_str().unwrap_or("")
        );
    }
    println!(
        "Allowed on the broker: {}",
        if allowed.is_empty() { "none" } else { "" }
    );
    for a in &allowed {
        println!("  {:<9} {:<24} {}", a.role, a.name, a.public_key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::KeysCommand;

    #[derive(Parser)]
    struct Keys {
        #[command(subcommand)]
        command: KeysCommand,
    }

    #[test]
    fn a_public_key_starting_with_a_hyphen_is_a_key_not_an_option() {
        let key = "-nb2Zm3t*X}v!kO-xPp=G5Yb6e]n?1Q:7Ls4@uR2";
        let parsed = Keys::try_parse_from(["keys", "allow", "dealer", "imap.example.org", key])
            .unwrap_or_else(|e| panic!("{e}"));
        let KeysCommand::Allow { public_key, .. } = parsed.command else {
            panic!("not an allow");
        };
        assert_eq!(public_key, key);
    }
}
