//! The embedded SQLite store: one file, created on first start, no setup.
//!
//! [`SqliteUsageRepository`] implements the domain's `UsageRepository` port. Reads use
//! connections from a small pool on Tokio's blocking threads; the database runs in WAL mode so
//! readers never wait for the writer. Inserts go to one writer thread that commits concurrent
//! batches together (`writer`). Summaries and stats read 15-minute pre-aggregates kept by
//! triggers (`buckets`), and raw rows (`raw`) only for the cut buckets at a range's edges;
//! day keys of raw rows come from a `usage_local_day` function registered on every connection.

mod buckets;
#[cfg(test)]
mod consistency_tests;
mod error;
mod fold;
mod insert;
mod local_day;
mod privacy;
mod raw;
mod repository;
mod schema;
mod writer;

pub use error::SqliteSetupError;
pub use repository::SqliteUsageRepository;
