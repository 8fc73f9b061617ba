//! Handler plugins: subscribe to Cyrus event names and turn a notification into the record
//! to archive, or ask for data only the IMAP host has.

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
    input::Job,
    plugin::{BuildInfo, PluginInfo},
};

/// The subscription that matches every event.
pub const ALL_EVENTS: &str = "*";

/// What a handler made of a notification.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 24], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum HandlerOutcome {
    /// Handled; the next handler gets this (possibly updated) notification. (since 1.0)
    Done {
        /// The notification, JSON text. (since 1.0)
        notification: RString,
    },
    /// The handler needs data from the collector on the IMAP host. The remaining handlers
    /// still run (so one round trip collects what all of them need), then the job goes back
    /// to the input with the union of the commands. (since 1.0)
    NeedsCollector {
        /// Collector commands: `FETCH`, `HEADER`, `GETMETADATA`, `GETACL`, `GETUSERDATA`.
        /// (since 1.0)
        commands: RVec<RString>,
        /// The notification, JSON text, as updated so far. (since 1.0)
        notification: RString,
    },
    /// Not now: the job is retried later (for example a Logout before its Login).
    /// (since 1.0)
    Postpone {
        /// Why. (since 1.0)
        reason: RString,
    },
    /// Bad input that no retry will fix. (since 1.0)
    Rejected {
        /// Why. (since 1.0)
        reason: RString,
    },
}

impl HandlerOutcome {
    /// Done with this notification.
    pub fn done(notification: impl Into<String>) -> Self {
        Self::Done {
            notification: RString::from(notification.into()),
        }
    }

    /// Needs these collector commands.
    pub fn needs_collector(commands: &[&str], notification: impl Into<String>) -> Self {
        Self::NeedsCollector {
            commands: commands.iter().map(|c| RString::from(*c)).collect(),
            notification: RString::from(notification.into()),
        }
    }

    /// Retry later, for this reason.
    pub fn postpone(reason: impl Into<String>) -> Self {
        Self::Postpone {
            reason: RString::from(reason.into()),
        }
    }

    /// Refuse for good, for this reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected {
            reason: RString::from(reason.into()),
        }
    }
}

/// The collector commands a handler may ask for: FETCH (the messages, into
/// `messageContent` and `messageHeaders`), HEADER (headers only), GETMETADATA, GETACL,
/// GETUSERDATA (the user's directory entry), and DLPACTION (the notification's
/// `dlp_imap_actions`, a keyword or a move to quarantine, carried out on its message; their
/// outcomes in `dlp_imap_results`).
pub const COLLECTOR_COMMANDS: [&str; 6] = [
    "FETCH",
    "HEADER",
    "GETMETADATA",
    "GETACL",
    "GETUSERDATA",
    "DLPACTION",
];

/// A handler. Implemented by handler plugins, called by the host.
/// Methods may only be added at the end, with a default body.
#[sabi_trait]
pub trait FfiHandler: Send + Sync {
    /// The Cyrus event names this handler subscribes to (`MessageAppend`,
    /// `vnd.cmu.MessageMove`, ...), or `*` for every event. (since 1.0)
    fn events(&self) -> RResult<RVec<RString>, PluginError>;

    /// Handles one job. `job.notification` is the notification as the previous handler left
    /// it. (since 1.0)
    #[sabi(last_prefix_field)]
    fn handle(&self, job: &Job) -> RResult<HandlerOutcome_NE, PluginError>;
}

/// The FFI trait object for [`FfiHandler`].
pub type HandlerBox = FfiHandler_TO<'static, RBox<()>>;

/// The root module of a handler plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HandlerModRef)))]
pub struct HandlerMod {
    /// The plugin's name and description. (since 1.0)
    pub info: extern "C" fn() -> PluginInfo,
    /// Creates the handler from its host context. (since 1.0)
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(host: HostBox) -> RResult<HandlerBox, PluginError>,
    /// How the library was built; absent in plugins built against 1.0. (since 1.1)
    pub build: BuildInfo,
}

impl RootModule for HandlerModRef {
    declare_root_module_statics! {HandlerModRef}
    const BASE_NAME: &'static str = crate::kind::HANDLER;
    const NAME: &'static str = crate::kind::HANDLER;
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
