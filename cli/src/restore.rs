//! `bonnie restore`: restores into live Cyrus (being written).

use bonnie_core::Config;

/// `bonnie restore`'s arguments.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The user whose mailbox is restored
    #[arg(long)]
    user: String,
}

/// Runs `bonnie restore`.
pub fn run(
    _config: &Config,
    _auditor: &crate::audit::Auditor<'_>,
    _args: &RestoreArgs,
) -> anyhow::Result<()> {
    anyhow::bail!("bonnie restore is being written")
}
