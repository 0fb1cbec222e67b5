//! Shared test support: the repository contract suite that every store adapter must pass,
//! and a client that drives the real HTTP app.

pub mod contract;
pub mod gate;
pub mod http;
pub mod http_suite;
pub mod records;
pub mod standin;
