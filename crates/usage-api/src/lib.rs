//! The HTTP face of the usage service: a thin actix-web layer over `usage-domain`.
//!
//! [`settings`] loads layered configuration, [`auth`] turns a bearer token into a user id,
//! [`routes`] extract, call the domain service and map the result, [`error`] holds the one
//! table from failures to statuses and codes, and [`startup`] wires a store and a server.

pub mod auth;
pub mod error;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;
