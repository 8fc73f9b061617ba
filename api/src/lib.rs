//! `bonnie-api`: the JSON-RPC 2.0 service through which Kolab clients (Roundcube) read the
//! history of groupware objects, their old revisions and the differences between them, and
//! free/busy; and through which e-discovery clients search and review the whole archive. It reads the archive through the same storage plugin the workers write.
#![forbid(unsafe_code)]

pub mod access;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod discovery;
pub mod logins;
pub mod methods;
pub mod metrics;
pub mod restore;
pub mod rpc;
pub mod server;
pub mod service;
pub mod throttle;
pub mod tls;
pub mod trace;
pub mod xml;
