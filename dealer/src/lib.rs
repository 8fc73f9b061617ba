//! bonnie-dealer's library: the durable handover of submissions to the broker (the
//! connection, the local spool, forwarding it in order, resting a broker that does not
//! answer), and the dealer's own exec and daemon modes. `bonnie-logd` hands its batches of
//! log lines over the same way.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod daemon;
mod dlist;
pub mod exec;
pub mod folder;
pub mod forward;
mod metrics;
mod rules;
pub mod spool;
pub mod submit;
