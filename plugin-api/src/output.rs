//! Output plugins: write batches of processed notifications and report a status per item.
//! Writes must be idempotent by job id: the host may deliver a job again after a crash.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RString, RVec},
};

use crate::{
    PluginError,
    host::HostBox,
    plugin::{BuildInfo, PluginInfo},
};

/// One processed job, ready to be written.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct OutputItem {
    /// The job's id: the idempotency key. (since 1.0)
    pub job_id: RString,
    /// The record to write, a JSON object (the processed notification). (since 1.0)
    pub record: RString,
    /// Facts added in later minor versions, as a JSON object; empty when none. (since 1.0)
    pub extra: RString,
}

impl OutputItem {
    /// An item for a job's record.
    pub fn new(job_id: impl Into<String>, record: impl Into<String>) -> Self {
        Self {
            job_id: RString::from(job_id.into()),
            record: RString::from(record.into()),
            extra: RString::new(),
        }
    }
}

/// What became of one item of a batch.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 12], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum ItemStatus {
    /// Written (or found already written). (since 1.0)
    Stored,
    /// Not written this time; deliver the job again later. (since 1.0)
    Retry {
        /// Why, for the log. (since 1.0)
        reason: RString,
    },
    /// Refused for good (kept by the output in its dead-letter store if it has one).
    /// (since 1.0)
    Rejected {
        /// Why, for the log. (since 1.0)
        reason: RString,
    },
}

/// An output. Implemented by output plugins, called by the host.
/// Methods may only be added at the end, with a default body.
#[sabi_trait]
pub trait FfiOutput: Send + Sync {
    /// Writes a batch; returns one status per item, in order. (since 1.0)
    #[sabi(last_prefix_field)]
    fn write(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError>;
}

/// The FFI trait object for [`FfiOutput`].
pub type OutputBox = FfiOutput_TO<'static, RBox<()>>;

/// The root module of an output plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OutputModRef)))]
pub struct OutputMod {
    /// The plugin's name and description. (since 1.0)
    pub info: extern "C" fn() -> PluginInfo,
    /// Creates the output from its host context. (since 1.0)
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(host: HostBox) -> RResult<OutputBox, PluginError>,
    /// How the library was built; absent in plugins built against 1.0. (since 1.1)
    pub build: BuildInfo,
}

impl RootModule for OutputModRef {
    declare_root_module_statics! {OutputModRef}
    const BASE_NAME: &'static str = crate::kind::OUTPUT;
    const NAME: &'static str = crate::kind::OUTPUT;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
