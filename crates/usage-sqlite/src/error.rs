//! How SQLite failures map onto the port's errors.

use std::path::PathBuf;

use rusqlite::{self, ErrorCode};
use usage_domain::RepositoryError;

/// The database could not be opened or prepared at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SqliteSetupError {
    #[error("cannot create the directory {path} for the database")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: r2d2::Error,
    },
    #[error("cannot prepare the schema of {path}")]
    Schema {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot start the writer thread of {path}")]
    Writer {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Busy, locked, read-only, full or unreadable databases are transient from a client's view.
pub(crate) fn from_sqlite(error: rusqlite::Error) -> RepositoryError {
    let transient = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::PermissionDenied
        )
    );
    if transient {
        RepositoryError::unavailable(error)
    } else {
        RepositoryError::internal(error)
    }
}

/// No connection became free in time: the store is overloaded or stuck.
pub(crate) fn from_pool(error: r2d2::Error) -> RepositoryError {
    RepositoryError::unavailable(error)
}
