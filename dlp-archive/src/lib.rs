//! DLP over what the archive keeps, shared by the `dlp` handler plugin and `bonnie dlp`: the
//! handler's configuration ([`config`], `[plugins.dlp]`), a record's messages read from the
//! job, the payloads it names or its trail ([`read_messages`]), the scan of a record against
//! the rules ([`scan`]) and the incidents it gives ([`incidents`]). The rules themselves are
//! bonnie-dlp's; the alerts bonnie-dlp-actions'.

pub mod config;
pub mod incidents;
mod messages;
pub mod scan;

pub use bonnie_model::collect::{Kept, kept_payloads};
pub use messages::read_messages;
