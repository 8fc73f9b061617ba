//! `bonnie checkpoint` asks the broker to sign a checkpoint of the verifiable log now and
//! prints it; `bonnie ledger init` makes the archive's signing key that checkpoints are signed
//! with (`[ledger] signing_key`, owner-only) and its public key beside it.

use anyhow::{Context as _, bail};
use bonnie_core::{Config, protocol::AdminRequest};
use bonnie_ledger::ArchiveKey;
use serde_json::Value;

use bonnie_api::admin::Admin;

/// Asks the broker for a checkpoint and prints it (the note itself, or JSON).
pub fn run(broker: &Admin, json: bool) -> anyhow::Result<()> {
    let made = broker.ask(&AdminRequest::Checkpoint)?;
    if json {
        println!("{made}");
        return Ok(());
    }
    let size = made["size"].as_u64().unwrap_or(0);
    let mut summary = if made["new"] == Value::Bool(true) {
        format!("Checkpoint of {size} leaves signed")
    } else {
        format!("No new leaves since the last checkpoint, of {size} leaves")
    };
    if let Some(previous) = made["previous"].as_u64() {
        summary.push_str(&format!(", consistent with checkpoint {previous}"));
    }
    if made["timestamped"] == Value::Bool(true) {
        summary.push_str(", time-stamped");
    }
    if let Some(path) = made["published"].as_str() {
        summary.push_str(&format!(", published to {path}"));
    }
    println!("{summary}.\n\n{}", made["note"].as_str().unwrap_or(""));
    Ok(())
}

/// Makes the archive's signing key at `[ledger] signing_key` (never over an existing one) and
/// writes its public key to `<key>.pub`; prints the public key.
pub fn init(config: &Config, name: &str) -> anyhow::Result<()> {
    let Some(path) = &config.ledger.signing_key else {
        bail!("set [ledger] signing_key to where the archive's signing key is to be kept");
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot make the folder {}", dir.display()))?;
    }
    let key = ArchiveKey::generate(path, name)
        .with_context(|| format!("cannot make the archive's signing key {}", path.display()))?;
    let public = key.public().to_string();
    let public_path = crate::verify::public_key_path(path);
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write the public key {}", public_path.display()))?;
    println!(
        "Signing key written to {} (owner-only); its public key, for verifiers, to {}:\n{public}",
        path.display(),
        public_path.display()
    );
    Ok(())
}
