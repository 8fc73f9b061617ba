//! e-Discovery over bonnie's archive.
//!
//! - [`config`]: `[discovery]`, the time zone and local domains queries are read against.
//! - [`query`]: the query language (Gmail and Vault style, with piler's extras), parsed once
//!   into a [`query::Query`] tree; errors say where and what.
//! - [`relax`]: the part of a tree a storage answers ([`bonnie_plugin_api::items::ItemQuery`]),
//!   a superset of the items the whole tree matches.
//! - [`evaluate`]: the tree's meaning on one item, the reference both storages are held to.
//! - [`item`]: an item (one archived message or groupware object revision) with every place it
//!   lived, its flag history and its deletion.
//! - [`state`]: an item's places and flags read from the archive's log and trails.
//! - [`search`]: a search over a storage: its candidates, then the exact answer.
//! - [`json`]: an item's times as the review front ends' JSON shows them.

#![forbid(unsafe_code)]

pub mod config;
pub mod evaluate;
pub mod item;
pub mod json;
pub mod query;
pub mod relax;
pub mod search;
pub mod state;

pub use search::DiscoveryError;
