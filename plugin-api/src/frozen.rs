//! The ABI as it was at each earlier minor version whose types the current ones extend: only
//! the prefix types that grew since (root modules, the host and storage vtables), frozen, never
//! to be edited, and never called. The host checks an older plugin's layout against them,
//! because abi_stable's own check refuses a library whose prefix types have fewer fields
//! than the loader's, although reading them through the loader's types is safe: a field or
//! method the library lacks reads as absent, or runs its default body (abi_stable issue 118).
//!
//! A minor version that grows a type reachable from a root module adds its predecessor here,
//! and [`layouts`] lists it. A minor version that grows none lists its predecessor with
//! today's layouts. 1.2 added `RecordQuery::items` and 1.3 `RecordQuery::keys_only`, which
//! cross as JSON, so plugins of 1.1, 1.2 and 1.3 have one layout, frozen as `v1_1` when 1.4
//! added `claim_writer` to the storage vtable (the host takes the newest entry at or before a
//! plugin's version).

use abi_stable::{StableAbi, type_layout::TypeLayout};

/// The root-module layouts of plugins built against an older minor version: `(minor, input,
/// handler, storage, output)`, oldest first.
pub fn layouts() -> [(u64, [&'static TypeLayout; 4]); 2] {
    [
        (
            0,
            [
                <v1_0::InputModRef as StableAbi>::LAYOUT,
                <v1_0::HandlerModRef as StableAbi>::LAYOUT,
                <v1_0::StorageModRef as StableAbi>::LAYOUT,
                <v1_0::OutputModRef as StableAbi>::LAYOUT,
            ],
        ),
        // 1.1, which 1.2 and 1.3 did not change.
        (
            1,
            [
                <v1_1::InputModRef as StableAbi>::LAYOUT,
                <v1_1::HandlerModRef as StableAbi>::LAYOUT,
                <v1_1::StorageModRef as StableAbi>::LAYOUT,
                <v1_1::OutputModRef as StableAbi>::LAYOUT,
            ],
        ),
    ]
}

/// plugin-api 1.0: the storage vtable without `put_if`, root modules without `build`, and the
/// host vtable that hands out that storage. Names and order as in 1.0 (the layout check
/// compares them); the types that did not change are today's.
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod v1_0 {
    use abi_stable::{
        StableAbi, sabi_trait,
        std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    };

    use crate::{
        PluginError, PluginInfo, Record,
        handler::HandlerBox,
        host::LogLevel_NE,
        input::InputBox,
        output::{ItemStatus_NE, OutputBox, OutputItem},
    };

    #[sabi_trait]
    pub trait HostApi: Send + Sync {
        fn plugin_name(&self) -> RString;
        fn config_json(&self) -> RString;
        fn config_dir(&self) -> RString;
        fn log(&self, level: LogLevel_NE, message: RStr<'_>, fields: RStr<'_>);
        fn storage(&self) -> ROption<StorageBox>;
        #[sabi(last_prefix_field)]
        fn is_stopping(&self) -> bool;
    }

    pub type HostBox = HostApi_TO<'static, RBox<()>>;

    #[sabi_trait]
    pub trait FfiStorage: Send + Sync + Clone {
        fn get(&self, collection: RStr<'_>, key: RStr<'_>)
        -> RResult<ROption<Record>, PluginError>;
        fn put(&self, record: Record) -> RResult<(), PluginError>;
        fn delete(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<bool, PluginError>;
        fn query(&self, query: RStr<'_>) -> RResult<RVec<Record>, PluginError>;
        #[sabi(last_prefix_field)]
        fn append_log(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError>;
        fn put_payload(&self, bytes: RSlice<'_, u8>) -> RResult<RString, PluginError> {
            let _ = bytes;
            RResult::RErr(PluginError::config("frozen"))
        }
        fn get_payload(&self, digest: RStr<'_>) -> RResult<ROption<RVec<u8>>, PluginError> {
            let _ = digest;
            RResult::RErr(PluginError::config("frozen"))
        }
    }

    pub type StorageBox = FfiStorage_TO<'static, RArc<()>>;

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = InputModRef)))]
    pub struct InputMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<InputBox, PluginError>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = HandlerModRef)))]
    pub struct HandlerMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<HandlerBox, PluginError>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = StorageModRef)))]
    pub struct StorageMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<StorageBox, PluginError>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = OutputModRef)))]
    pub struct OutputMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<OutputBox, PluginError>,
    }
}

/// plugin-api 1.1 to 1.3: the storage vtable without `claim_writer`, and the host vtable and
/// root modules that hand out that storage. Names and order as then; the types that did not
/// change are today's.
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod v1_1 {
    use abi_stable::{
        StableAbi, sabi_trait,
        std_types::{RArc, RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    };

    use crate::{
        PluginError, PluginInfo, Record,
        handler::HandlerBox,
        host::LogLevel_NE,
        input::InputBox,
        output::{ItemStatus_NE, OutputBox, OutputItem},
        plugin::BuildInfo,
    };

    #[sabi_trait]
    pub trait HostApi: Send + Sync {
        fn plugin_name(&self) -> RString;
        fn config_json(&self) -> RString;
        fn config_dir(&self) -> RString;
        fn log(&self, level: LogLevel_NE, message: RStr<'_>, fields: RStr<'_>);
        fn storage(&self) -> ROption<StorageBox>;
        #[sabi(last_prefix_field)]
        fn is_stopping(&self) -> bool;
    }

    pub type HostBox = HostApi_TO<'static, RBox<()>>;

    #[sabi_trait]
    pub trait FfiStorage: Send + Sync + Clone {
        fn get(&self, collection: RStr<'_>, key: RStr<'_>)
        -> RResult<ROption<Record>, PluginError>;
        fn put(&self, record: Record) -> RResult<(), PluginError>;
        fn delete(&self, collection: RStr<'_>, key: RStr<'_>) -> RResult<bool, PluginError>;
        fn query(&self, query: RStr<'_>) -> RResult<RVec<Record>, PluginError>;
        #[sabi(last_prefix_field)]
        fn append_log(&self, items: RVec<OutputItem>) -> RResult<RVec<ItemStatus_NE>, PluginError>;
        fn put_payload(&self, bytes: RSlice<'_, u8>) -> RResult<RString, PluginError> {
            let _ = bytes;
            RResult::RErr(PluginError::config("frozen"))
        }
        fn get_payload(&self, digest: RStr<'_>) -> RResult<ROption<RVec<u8>>, PluginError> {
            let _ = digest;
            RResult::RErr(PluginError::config("frozen"))
        }
        fn put_if(&self, record: Record, expected: ROption<RString>) -> RResult<bool, PluginError> {
            let _ = (record, expected);
            RResult::RErr(PluginError::config("frozen"))
        }
    }

    pub type StorageBox = FfiStorage_TO<'static, RArc<()>>;

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = InputModRef)))]
    pub struct InputMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<InputBox, PluginError>,
        pub build: BuildInfo,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = HandlerModRef)))]
    pub struct HandlerMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<HandlerBox, PluginError>,
        pub build: BuildInfo,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = StorageModRef)))]
    pub struct StorageMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<StorageBox, PluginError>,
        pub build: BuildInfo,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = OutputModRef)))]
    pub struct OutputMod {
        pub info: extern "C" fn() -> PluginInfo,
        #[sabi(last_prefix_field)]
        pub new: extern "C" fn(host: HostBox) -> RResult<OutputBox, PluginError>,
        pub build: BuildInfo,
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::{
        StableAbi,
        abi_stability::abi_checking::{
            CheckingGlobals, check_layout_compatibility, check_layout_compatibility_with_globals,
        },
    };

    use super::*;
    use crate::{handler, input, output, storage};

    /// What lets the host read an older plugin through today's types: today's root modules
    /// (and everything they reach) only add to each frozen version's. Each version is checked
    /// with a record of prefix types of its own, as the host checks a plugin.
    #[test]
    fn the_current_root_modules_extend_every_frozen_version() {
        let current = [
            <input::InputModRef as StableAbi>::LAYOUT,
            <handler::HandlerModRef as StableAbi>::LAYOUT,
            <storage::StorageModRef as StableAbi>::LAYOUT,
            <output::OutputModRef as StableAbi>::LAYOUT,
        ];
        for (minor, frozen) in layouts() {
            let globals = CheckingGlobals::new();
            for (old, new) in frozen.iter().zip(current) {
                if let Err(e) = check_layout_compatibility_with_globals(old, new, &globals) {
                    panic!("1.{minor}'s {} is not extended by today's: {e}", old.name());
                }
            }
        }
    }

    /// And abi_stable's own check refuses them, which is why the frozen layouts exist; when it
    /// no longer does, the host can drop them.
    #[test]
    fn abi_stable_refuses_a_loader_whose_prefix_types_grew() {
        let (_, frozen) = layouts()[0];
        assert!(
            check_layout_compatibility(<handler::HandlerModRef as StableAbi>::LAYOUT, frozen[1])
                .is_err()
        );
    }
}
