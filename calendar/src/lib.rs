//! Calendar objects for free/busy (being written).
#![forbid(unsafe_code)]
