//! MongoDB adapter of the [`UsageRepository`](usage_domain::UsageRepository) port.
//!
//! For operators who outgrow the embedded SQLite store: records live in the `usages`
//! collection of the database named in the connection string (`usage` when it names none),
//! one document per execution, with camelCase fields and BSON dates. What lives where:
//!
//! - [`repository`]: [`MongoUsageRepository`], connecting and answering the port's methods;
//! - [`indexes`]: the four indexes the port's contract relies on, created and reconciled at
//!   start-up, and [`IndexSpec`] to inspect them;
//! - `document` and `pipeline` (private): the one place each that writes a record as a BSON
//!   document and that builds and reads the aggregation pipelines;
//! - [`error`]: [`MongoSetupError`], and which driver failures count as "unavailable".
//!
//! Summary and stats are computed by the server with aggregation pipelines; the adapter never
//! loads a user's records into memory.
//!
//! # Limitations
//!
//! - MongoDB holds `expireAfterSeconds` in a 32-bit integer, so retention is capped at
//!   24,855 days (about 68 years); the domain's `Retention` has the same cap.
//! - On a replica set the driver retries an `insertMany` once after a network error. If the
//!   first attempt had stored some records, the retry sees them as duplicates: every record
//!   is still stored exactly once, but that request reports them as duplicates, not as
//!   newly stored.
//! - On a sharded cluster the unique `{userId: 1, executionId: 1}` index needs a shard key
//!   that is a prefix of it, such as `{userId: 1}`; sharding `usages` is left to operators.

mod document;
pub mod error;
pub mod indexes;
mod pipeline;
mod privacy;
pub mod repository;

pub use error::MongoSetupError;
pub use indexes::IndexSpec;
pub use repository::{COLLECTION, DEFAULT_DATABASE, MongoOptions, MongoUsageRepository};
