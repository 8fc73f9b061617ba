//! The shared test harness: finds the binaries and plugins cargo built, builds the
//! out-of-tree fixtures, and starts real processes in temporary labs. Integration tests in
//! `tests/tests/` use it; none invents its own.
#![forbid(unsafe_code)]

pub mod api;
pub mod attached;
pub mod certificates;
pub mod cluster;
pub mod cyrus;
pub mod fixtures;
pub mod kolab;
pub mod lab;
pub mod ldap;
pub mod logd;
pub mod metrics;
pub mod moto;
pub mod paths;
pub mod postfix;
pub mod process;
pub mod retention;
pub mod search_server;
pub mod storages;
pub mod worker;
