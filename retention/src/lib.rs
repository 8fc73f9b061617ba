//! Retention and legal holds for bonnie's archive: the rules that say how long each archived
//! entry is kept ([`rules`]), the holds that keep entries whatever the rules say ([`holds`]), and
//! the plan of what would go ([`plan`]), which the purge follows. A hold may be placed from an
//! e-discovery case's queries ([`discovery`]).

pub mod discovery;
pub mod holds;
mod pattern;
pub mod plan;
pub mod purge;
pub mod rules;

pub use discovery::DiscoveryCriteria;
pub use holds::{Hold, Holds, Release};
pub use plan::{Plan, plan, walk};
pub use purge::{PurgeBatch, PurgeReport, PurgedEntry, purge};
pub use rules::{Entry, Keep, Kind, Policy, RetentionConfig};

/// What retention can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The `[retention]` section is wrong.
    #[error("retention configuration: {0}")]
    Config(String),
    /// The members of a group a rule names cannot be read: no policy is built.
    #[error(
        "retention rule {rule:?}: the members of group {group:?} cannot be read, so nothing is planned or purged: {reason}"
    )]
    Group {
        /// The rule naming it.
        rule: String,
        /// The group as the rule names it.
        group: String,
        /// Why (the resolver's words).
        reason: String,
    },
    /// A hold cannot be placed, released or read.
    #[error("{0}")]
    Hold(String),
    /// A stored record cannot be read as the log's leaves read it.
    #[error("{0}")]
    Record(String),
    /// The step that writes a purge record failed: nothing of its batch was deleted.
    #[error("the purge record was not written, so nothing more was purged: {0}")]
    NotRecorded(String),
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] bonnie_plugin_api::PluginError),
}
