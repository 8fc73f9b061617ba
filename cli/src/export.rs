//! `bonnie export`: e-discovery exports (being written).

use bonnie_core::Config;

/// `bonnie export`'s arguments.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The query whose items are exported
    query: Option<String>,
}

/// Runs `bonnie export`.
pub fn run(
    _config: &Config,
    _auditor: &crate::audit::Auditor<'_>,
    _args: &ExportArgs,
) -> anyhow::Result<()> {
    anyhow::bail!("bonnie export is being written")
}
