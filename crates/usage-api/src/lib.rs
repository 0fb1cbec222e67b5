//! The HTTP face of the usage service: a thin actix-web layer over `usage-domain`.
//!
//! [`settings`] loads layered configuration, [`auth`] turns a bearer token into a user id,
//! [`routes`] extract, call the domain service and map the result, [`error`] holds the one
//! table from failures to statuses and codes, and [`startup`] wires a store and a server.
//! Around them: [`metrics`] (Prometheus counters and the metered store), [`cors`] and
//! [`rate_limit`] (the optional browser and per-user limits), and [`cli`] (the binary's
//! `import` and `purge` commands).

pub mod auth;
pub mod cli;
pub mod cors;
pub mod error;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;
