//! The embedded SQLite store: one file, created on first start, no setup.
//!
//! [`SqliteUsageRepository`] implements the domain's `UsageRepository` port. Connections come
//! from a small pool and run on Tokio's blocking threads; the database runs in WAL mode so
//! readers never wait for the writer. Summaries and stats are computed by SQL, with day keys
//! from a `usage_local_day` function registered on every connection.

mod error;
mod local_day;
mod repository;
mod schema;

pub use error::SqliteSetupError;
pub use repository::SqliteUsageRepository;
