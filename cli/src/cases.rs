//! `bonnie case`: e-discovery cases (being written).

use bonnie_core::Config;

/// `bonnie case`'s commands.
#[derive(clap::Subcommand)]
pub enum CaseCommand {
    /// The cases, open and closed
    List {
        /// Print the cases as one JSON array
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `bonnie case` command.
pub fn run(
    _config: &Config,
    _auditor: &crate::audit::Auditor<'_>,
    _command: &CaseCommand,
) -> anyhow::Result<()> {
    anyhow::bail!("bonnie case is being written")
}
