//! Operator commands of the `usage-service` binary that work on the store directly, without
//! the HTTP server: [`import`] loads the web client's backup file or NDJSON, [`purge`] erases a
//! user's records. Both go through [`usage_domain::UsageService`], so they apply exactly the
//! rules of the HTTP routes.

pub mod backup;
pub mod import;
pub mod purge;

pub use import::{ImportError, ImportOptions, ImportTally, InputFormat, import};
pub use purge::purge;
