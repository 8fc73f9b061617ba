//! Input plugins: hand jobs to the host and receive each job's outcome. The calls block; an
//! input that needs async I/O runs its own runtime on its own thread.

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
};

use crate::{
    PluginError,
    host::HostBox,
    plugin::{BuildInfo, PluginInfo},
};

/// One job: a notification to process.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's id, unique and stable across redeliveries. (since 1.0)
    pub id: RString,
    /// The notification, JSON text as Cyrus sent it or as a collector completed it.
    /// (since 1.0)
    pub notification: RString,
    /// Facts about the job as a JSON object, such as `attempt`; `{}` when none. (since 1.0)
    /// Since 1.1 also `received_ms`: when the notification was first received, in
    /// milliseconds since the epoch, the same on every delivery and replay of the job; the
    /// time of a notification that carries none (see [`Job::received_ms`]); and `collected`,
    /// true when a collector wrote the notification (see [`Job::collected`]).
    pub meta: RString,
}

impl Job {
    /// A job without meta data.
    pub fn new(id: impl Into<String>, notification: impl Into<String>) -> Self {
        Self {
            id: RString::from(id.into()),
            notification: RString::from(notification.into()),
            meta: "{}".into(),
        }
    }

    /// `received_ms` of the job's meta: when its notification was first received, stable
    /// across deliveries and replays. A notification without a timestamp takes this time
    /// (rather than the time it is processed), so every replay files it under the same day.
    pub fn received_ms(&self) -> Option<i64> {
        serde_json::from_str::<serde_json::Value>(self.meta.as_str())
            .ok()?
            .get("received_ms")?
            .as_i64()
    }

    /// `collected` of the job's meta: true only when its source vouches that a collector
    /// wrote the notification (the broker marks such jobs), so that it may hold the fields
    /// only collectors write. Meta that is not a JSON object, or says anything but `true`,
    /// is not collected.
    pub fn collected(&self) -> bool {
        serde_json::from_str::<serde_json::Value>(self.meta.as_str())
            .is_ok_and(|meta| meta.get("collected") == Some(&serde_json::Value::Bool(true)))
    }
}

/// What an input has for the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 24], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum NextJob {
    /// A job to run. (since 1.0)
    Job(Job),
    /// Nothing within the wait; ask again. (since 1.0)
    Idle,
    /// The input has no more jobs and never will (a replayed file ended). (since 1.0)
    Finished,
}

/// What became of a job, reported back to the input that gave it.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 24], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum JobOutcome {
    /// Processed, stored and written by every output. (since 1.0)
    Done,
    /// Handlers need data only the IMAP host has: run these collector commands, then
    /// deliver the job again with the updated notification. (since 1.0)
    Collect {
        /// Collector commands: `FETCH`, `HEADER`, `GETMETADATA`, `GETACL`, `GETUSERDATA`.
        /// (since 1.0)
        commands: RVec<RString>,
        /// The notification as the handlers left it. (since 1.0)
        notification: RString,
    },
    /// Try again later. (since 1.0)
    Postpone {
        /// Why, for the log and the job store. (since 1.0)
        reason: RString,
    },
    /// Bad input: keep the job as failed and do not retry it. (since 1.0)
    Rejected {
        /// Why. (since 1.0)
        reason: RString,
    },
    /// A plugin failed (an error or a caught panic) while running the job. (since 1.0)
    Failed {
        /// Why. (since 1.0)
        reason: RString,
    },
}

/// An input. Implemented by input plugins, called by the host.
/// Methods may only be added at the end, with a default body.
#[sabi_trait]
pub trait FfiInput: Send + Sync {
    /// Called once before the first `next_job`, with how many jobs the host can hold at
    /// once (its credit). An input that talks to a network starts doing so here. (since 1.0)
    fn start(&self, capacity: u32) -> RResult<(), PluginError>;

    /// The next job, waiting at most `wait_ms` milliseconds for one. (since 1.0)
    fn next_job(&self, wait_ms: u32) -> RResult<NextJob_NE, PluginError>;

    /// Reports the outcome of a job this input gave. (since 1.0)
    fn complete(&self, job_id: RStr<'_>, outcome: JobOutcome_NE) -> RResult<(), PluginError>;

    /// Stop handing out jobs. The host still reports the outcomes of the jobs in flight with
    /// `complete` after this, then drops the input, which should deliver them before it is
    /// gone. (since 1.0)
    #[sabi(last_prefix_field)]
    fn stop(&self) -> RResult<(), PluginError>;
}

/// The FFI trait object for [`FfiInput`].
pub type InputBox = FfiInput_TO<'static, RBox<()>>;

/// The root module of an input plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = InputModRef)))]
pub struct InputMod {
    /// The plugin's name and description. (since 1.0)
    pub info: extern "C" fn() -> PluginInfo,
    /// Creates the input from its host context. (since 1.0)
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(host: HostBox) -> RResult<InputBox, PluginError>,
    /// How the library was built; absent in plugins built against 1.0. (since 1.1)
    pub build: BuildInfo,
}

impl RootModule for InputModRef {
    declare_root_module_statics! {InputModRef}
    const BASE_NAME: &'static str = crate::kind::INPUT;
    const NAME: &'static str = crate::kind::INPUT;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_meta(meta: &str) -> Job {
        let mut job = Job::new("1", "{}");
        job.meta = meta.into();
        job
    }

    #[test]
    fn only_a_top_level_collected_true_says_a_collector_wrote_the_notification() {
        assert!(with_meta(r#"{"collected":true,"received_ms":1}"#).collected());
        assert!(with_meta(r#"{ "received_ms": 1, "collected" : true }"#).collected());
        assert!(!with_meta(r#"{"collected":false,"x":{"collected":true}}"#).collected());
        assert!(!with_meta(r#"{"note":"\"collected\":true"}"#).collected());
        assert!(!with_meta(r#"{"collected":"true"}"#).collected());
        assert!(!with_meta(r#"{"collected":true"#).collected());
        assert!(!Job::new("1", "{}").collected());
    }
}
