//! What plugin authors implement: plain Rust traits, one per plugin kind, and the
//! `export_*!` macros that export one of them as the library's root module. Every call from
//! the host runs inside a panic guard here, so a panic becomes a [`PluginError`] and never
//! unwinds across the boundary.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::Duration,
};

use abi_stable::{
    StableAbi,
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RSlice, RStr, RString, RVec},
};

use crate::{
    HandlerOutcome, Host, ItemStatus, Job, JobOutcome, NextJob, OutputItem, PluginError, Record,
    RecordQuery,
    error::panic_message,
    handler::{FfiHandler, FfiHandler_TO, HandlerBox, HandlerOutcome_NE},
    host::HostBox,
    input::{FfiInput, FfiInput_TO, InputBox, JobOutcome_NE, NextJob_NE},
    output::{FfiOutput, FfiOutput_TO, ItemStatus_NE, OutputBox},
    storage::{FfiStorage, FfiStorage_TO, StorageBox},
};

/// A plugin's description, returned by its root module's `info`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name: its config table is `[plugins.<name>]`. (since 1.0)
    pub name: RStr<'static>,
    /// The plugin's own version. (since 1.0)
    pub version: RStr<'static>,
    /// One sentence on what it does. (since 1.0)
    pub description: RStr<'static>,
    /// Facts added in later minor versions, as a JSON object; empty when none. (since 1.0)
    pub extra: RStr<'static>,
}

/// How a plugin library was built, as its export macro saw it; a root-module field since 1.1,
/// so a plugin built against 1.0 has none (the host reads it as not declared).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// True when the library was built with `panic = "unwind"`, so the export macros' panic
    /// guards catch its panics. With `panic = "abort"` a panic would end the whole worker, and
    /// the host refuses the library. (since 1.1)
    pub panic_unwinds: bool,
    /// Facts added in later minor versions, as a JSON object; empty when none. (since 1.1)
    pub extra: RStr<'static>,
}

impl BuildInfo {
    /// What a library built with this panic strategy declares.
    #[doc(hidden)]
    pub const fn new(panic_unwinds: bool) -> Self {
        Self {
            panic_unwinds,
            extra: RStr::from_str(""),
        }
    }
}

/// A handler, as its author writes it.
pub trait Handler: Send + Sync + 'static {
    /// The event names it subscribes to, or `*`.
    fn events(&self) -> Vec<String>;
    /// Handles one job; `job.notification` is the notification as the previous handler
    /// left it.
    fn handle(&self, job: &Job) -> Result<HandlerOutcome, PluginError>;
}

/// An input, as its author writes it.
pub trait Input: Send + Sync + 'static {
    /// Starts the input; `capacity` is how many jobs the host holds at once.
    fn start(&self, capacity: u32) -> Result<(), PluginError> {
        let _ = capacity;
        Ok(())
    }
    /// The next job, waiting at most `wait`.
    fn next_job(&self, wait: Duration) -> Result<NextJob, PluginError>;
    /// The outcome of a job this input gave.
    fn complete(&self, job_id: &str, outcome: JobOutcome) -> Result<(), PluginError>;
    /// Stop taking jobs.
    fn stop(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// An output, as its author writes it.
pub trait Output: Send + Sync + 'static {
    /// Writes a batch, idempotently by job id; one status per item, in order.
    fn write(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError>;
}

/// A storage backend, as its author writes it.
pub trait Storage: Send + Sync + 'static {
    /// The record with this key, if any.
    fn get(&self, collection: &str, key: &str) -> Result<Option<Record>, PluginError>;
    /// Inserts or replaces a record.
    fn put(&self, record: Record) -> Result<(), PluginError>;
    /// Deletes a record; true if it existed.
    fn delete(&self, collection: &str, key: &str) -> Result<bool, PluginError>;
    /// The records matching a query.
    fn query(&self, query: RecordQuery) -> Result<Vec<Record>, PluginError>;
    /// Appends processed jobs to the event log, idempotently by job id.
    fn append_log(&self, items: Vec<OutputItem>) -> Result<Vec<ItemStatus>, PluginError>;
    /// Keeps a message payload once, by its SHA-256 (lowercase hex), which it returns.
    fn put_payload(&self, bytes: &[u8]) -> Result<String, PluginError> {
        let _ = bytes;
        Err(PluginError::config(
            "this storage keeps no message payloads",
        ))
    }
    /// The payload with this SHA-256, if kept.
    fn get_payload(&self, digest: &str) -> Result<Option<Vec<u8>>, PluginError> {
        let _ = digest;
        Err(PluginError::config(
            "this storage keeps no message payloads",
        ))
    }
    /// Inserts or replaces `record` only if the stored body is still `expected` (`None`: only
    /// if absent), as one atomic step against every other writer; true if written.
    fn put_if(&self, record: Record, expected: Option<&str>) -> Result<bool, PluginError> {
        let _ = (record, expected);
        Err(PluginError::config(
            "this storage cannot replace a record conditionally (put_if)",
        ))
    }
    /// The worker host's claim, once at start-up: `sole` if it is the only worker writing
    /// this storage, so that writes of records may be held in memory until the next
    /// `append_log` (or query), which writes them first in the same commit. A claim that
    /// conflicts with another worker's (a sole one beside any other) is an error. By default
    /// nothing is held and every claim is granted.
    fn claim_writer(&self, sole: bool) -> Result<(), PluginError> {
        let _ = sole;
        Ok(())
    }
}

/// Runs plugin code, turning a panic into [`PluginError::panicked`].
pub fn guard<R>(f: impl FnOnce() -> Result<R, PluginError>) -> RResult<R, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(PluginError::panicked(panic_message(&*payload))),
    }
}

/// The panic-guarded FFI face of a plugin author's object. Shared (`Arc`) so that storage
/// handles can be cloned; dropped inside a panic guard too, because abi_stable's destructor
/// shim would abort the host on a panicking `Drop`.
struct Guarded<T: Send + Sync + 'static>(Option<Arc<T>>);

impl<T: Send + Sync + 'static> Guarded<T> {
    fn new(inner: T) -> Self {
        Self(Some(Arc::new(inner)))
    }

    fn get(&self) -> &T {
        self.0
            .as_deref()
            .expect("a guarded object is present until it is dropped")
    }
}

impl<T: Send + Sync + 'static> Clone for Guarded<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + Sync + 'static> Drop for Guarded<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        }
    }
}

impl<T: Handler> FfiHandler for Guarded<T> {
    fn events(&self) -> RResult<RVec<RString>, PluginError> {
        guard(|| Ok(self.get().events().into_iter().map(RString::from).collect()))
    }

    fn handle(&self, job: &Job) -> RResult<HandlerOutcome_NE, PluginError> {
        guard(|| self.get().handle(job).map(HandlerOutcome_NE::new))
    }
}

impl<T: Input> FfiInput for Guarded<T> {
    fn start(&self, capacity: u32) -> RResult<(), PluginError> {
        guard(|| self.get().start(capacity))
    }

    fn next_job(&self, wait_ms: u32) -> RResult<NextJob_NE, PluginError> {
        guard(|| {
            self.get()
                .next_job(Duration::from_millis(u64::from(wait_ms)))
                .map(NextJob_NE::new)
        })
    }

    fn complete(&self, job_id: RStr<'_>, outcome: JobOutcome_NE) -> RResult<(), PluginError> {
        guard(|| {
            // An outcome a newer host knows and this plugin does not still ends the job.
            let outcome = outcome.into_enum().unwrap_or_else(|e| JobOutcome::Failed {
                reason: format!(
                    "outcome kind {} is unknown to this plugin",
                    e.into_inner().get_discriminant()
                )
                .into(),
            });
            self.get().complete(job_id.as_str(), outcome)
        })
    }

    fn stop(&self) -> RResult<(), PluginError> {
        guard(|| self.get().stop())
    }
}

impl<T: Output> FfiOutput for Guarded<T> {
    fn write(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError> {
        guard(|| statuses(self.get().write(items.into_vec())))
    }
}

impl<T: Storage> FfiStorage for Guarded<T> {
    fn get(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<ROption<Record>, PluginError> {
        guard(|| {
            self.get()
                .get(collection.as_str(), key.as_str())
                .map(ROption::from)
        })
    }

    fn put(&self, record: Record) -> RResult<(), PluginError> {
        guard(|| self.get().put(record))
    }

    fn delete(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<bool, PluginError> {
        guard(|| self.get().delete(collection.as_str(), key.as_str()))
    }

    fn query(&self, query: RStr<'_>) -> RResult<RVec<Record>, PluginError> {
        guard(|| {
            // A query this storage cannot read (a field added in a later version) is not bad
            // input: the job may succeed with another storage, so it is not rejected.
            let query: RecordQuery = serde_json::from_str(query.as_str()).map_err(|e| {
                PluginError::config(format!("this storage cannot run the query: {e}"))
            })?;
            self.get().query(query).map(RVec::from)
        })
    }

    fn append_log(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError> {
        guard(|| statuses(self.get().append_log(items.into_vec())))
    }

    fn put_payload(&self, bytes: RSlice<'_, u8>) -> RResult<RString, PluginError> {
        guard(|| self.get().put_payload(bytes.as_slice()).map(RString::from))
    }

    fn get_payload(&self, digest: RStr<'_>) -> RResult<ROption<RVec<u8>>, PluginError> {
        guard(|| {
            self.get()
                .get_payload(digest.as_str())
                .map(|p| p.map(RVec::from).into())
        })
    }

    fn put_if(&self, record: Record, expected: ROption<RString>) -> RResult<bool, PluginError> {
        guard(|| {
            self.get()
                .put_if(record, expected.as_ref().map(RString::as_str).into_option())
        })
    }

    fn claim_writer(&self, sole: bool) -> RResult<(), PluginError> {
        guard(|| self.get().claim_writer(sole))
    }
}

fn statuses(
    result: Result<Vec<ItemStatus>, PluginError>,
) -> Result<RVec<ItemStatus_NE>, PluginError> {
    result.map(|v| v.into_iter().map(ItemStatus_NE::new).collect())
}

/// Builds a handler from its constructor, for [`export_handler!`].
#[doc(hidden)]
pub fn new_handler<T: Handler>(
    host: HostBox,
    new: fn(Host) -> Result<T, PluginError>,
) -> RResult<HandlerBox, PluginError> {
    guard(|| new(Host::new(host)).map(|h| FfiHandler_TO::from_value(Guarded::new(h), TD_Opaque)))
}

/// Builds an input from its constructor, for [`export_input!`].
#[doc(hidden)]
pub fn new_input<T: Input>(
    host: HostBox,
    new: fn(Host) -> Result<T, PluginError>,
) -> RResult<InputBox, PluginError> {
    guard(|| new(Host::new(host)).map(|h| FfiInput_TO::from_value(Guarded::new(h), TD_Opaque)))
}

/// Builds an output from its constructor, for [`export_output!`].
#[doc(hidden)]
pub fn new_output<T: Output>(
    host: HostBox,
    new: fn(Host) -> Result<T, PluginError>,
) -> RResult<OutputBox, PluginError> {
    guard(|| new(Host::new(host)).map(|h| FfiOutput_TO::from_value(Guarded::new(h), TD_Opaque)))
}

/// Builds a storage from its constructor, for [`export_storage!`].
#[doc(hidden)]
pub fn new_storage<T: Storage>(
    host: HostBox,
    new: fn(Host) -> Result<T, PluginError>,
) -> RResult<StorageBox, PluginError> {
    guard(|| {
        new(Host::new(host)).map(|h| FfiStorage_TO::from_ptr(RArc::new(Guarded::new(h)), TD_Opaque))
    })
}

/// Wraps a storage object in the panic guard; for hosts and tests that build one in-process.
pub fn storage_box<T: Storage>(storage: T) -> StorageBox {
    FfiStorage_TO::from_ptr(RArc::new(Guarded::new(storage)), TD_Opaque)
}

/// Exports the library's root module. Used by the `export_*!` macros; the symbol name is
/// the one abi_stable 0.11 looks up (checked by a test of this crate).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_root_module {
    ($kind:ident, $module:ident, $module_ref:ident, $boxed:ident, $new_fn:ident,
     $name:expr, $description:expr, $new:expr) => {
        #[doc(hidden)]
        pub mod __bonnie_plugin_export {
            use super::*;
            use $crate::abi_stable::prefix_type::PrefixTypeTrait as _;
            use $crate::$kind::{$boxed as PluginBox, $module as Module, $module_ref as ModuleRef};

            extern "C" fn info() -> $crate::PluginInfo {
                $crate::PluginInfo {
                    name: $crate::abi_stable::std_types::RStr::from_str($name),
                    version: $crate::abi_stable::std_types::RStr::from_str(env!(
                        "CARGO_PKG_VERSION"
                    )),
                    description: $crate::abi_stable::std_types::RStr::from_str($description),
                    extra: $crate::abi_stable::std_types::RStr::from_str(""),
                }
            }

            extern "C" fn new(
                host: $crate::host::HostBox,
            ) -> $crate::abi_stable::std_types::RResult<PluginBox, $crate::PluginError> {
                $crate::plugin::$new_fn(host, $new)
            }

            /// The root module, built on first load. `cfg!(panic = ...)` is evaluated here, in
            /// the plugin's own crate, so it is the plugin's panic strategy.
            pub fn root_module() -> ModuleRef {
                Module {
                    info,
                    new,
                    build: $crate::plugin::BuildInfo::new(cfg!(panic = "unwind")),
                }
                .leak_into_prefix()
            }

            /// The library header abi_stable looks up when the host loads this library.
            // SAFETY: `from_constructor` requires the constructor to return the root module
            // of type `ModuleRef`, which `root_module` does.
            #[allow(unsafe_code, non_upper_case_globals)]
            #[unsafe(no_mangle)]
            pub static _1as_0lib_1header_0root_bmodule_bloader:
                $crate::abi_stable::library::LibHeader = {
                extern "C" fn erased() -> $crate::abi_stable::library::RootModuleResult {
                    $crate::abi_stable::library::__call_root_module_loader(root_module)
                }
                unsafe {
                    $crate::abi_stable::library::LibHeader::from_constructor::<ModuleRef>(
                        erased,
                        $crate::abi_stable::library::CheckTypeLayout::Yes,
                    )
                }
            };
        }
    };
}

/// Exports a handler: `export_handler!(name: "x", description: "...", new: X::new)`, where
/// `new` is `fn(Host) -> Result<X, PluginError>` and `X: Handler`.
#[macro_export]
macro_rules! export_handler {
    (name: $name:expr, description: $description:expr, new: $new:expr $(,)?) => {
        $crate::__export_root_module!(
            handler,
            HandlerMod,
            HandlerModRef,
            HandlerBox,
            new_handler,
            $name,
            $description,
            $new
        );
    };
}

/// Exports an input; see [`export_handler!`].
#[macro_export]
macro_rules! export_input {
    (name: $name:expr, description: $description:expr, new: $new:expr $(,)?) => {
        $crate::__export_root_module!(
            input,
            InputMod,
            InputModRef,
            InputBox,
            new_input,
            $name,
            $description,
            $new
        );
    };
}

/// Exports an output; see [`export_handler!`].
#[macro_export]
macro_rules! export_output {
    (name: $name:expr, description: $description:expr, new: $new:expr $(,)?) => {
        $crate::__export_root_module!(
            output,
            OutputMod,
            OutputModRef,
            OutputBox,
            new_output,
            $name,
            $description,
            $new
        );
    };
}

/// Exports a storage; see [`export_handler!`].
#[macro_export]
macro_rules! export_storage {
    (name: $name:expr, description: $description:expr, new: $new:expr $(,)?) => {
        $crate::__export_root_module!(
            storage,
            StorageMod,
            StorageModRef,
            StorageBox,
            new_storage,
            $name,
            $description,
            $new
        );
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_the_symbol_abi_stable_loads() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
