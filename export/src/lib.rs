//! e-Discovery exports (being written).

#![forbid(unsafe_code)]
