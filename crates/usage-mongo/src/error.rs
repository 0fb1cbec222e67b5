//! Errors of this adapter, and the one place that decides which driver failures mean
//! "unavailable, retry later" and which mean "internal".

use mongodb::error::{
    Error as DriverError, ErrorKind, RETRYABLE_ERROR, RETRYABLE_WRITE_ERROR,
    SYSTEM_OVERLOADED_ERROR, TRANSIENT_TRANSACTION_ERROR, WriteFailure,
};
use usage_domain::RepositoryError;

/// Why the adapter could not be set up.
///
/// No variant carries the connection string: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum MongoSetupError {
    /// The driver rejected the connection string or the client options.
    #[error("the MongoDB connection string is not valid")]
    InvalidUri(#[source] DriverError),
    /// No server answered in time; starting again later may work.
    #[error("MongoDB cannot be reached")]
    Unavailable(#[source] DriverError),
    /// The server answered, but refused a set-up step (authentication, listing or creating
    /// indexes, `collMod`).
    #[error("MongoDB refused to set up the `usages` collection")]
    Rejected(#[source] DriverError),
    /// An index the adapter relies on exists with another definition. The adapter never
    /// drops an index by itself: an operator decides.
    #[error("index `{name}` of `usages` conflicts with the one the service needs: {reason}")]
    IndexConflict { name: String, reason: String },
    /// The server answered `listIndexes` with a shape the adapter does not understand.
    #[error("MongoDB listed an index of `usages` that cannot be read: {0}")]
    UnreadableIndex(String),
    /// MongoDB stores `expireAfterSeconds` as a 32-bit integer, about 68 years.
    #[error(
        "a retention of {days} days is longer than a MongoDB TTL index can hold \
         ({max_days} days)"
    )]
    RetentionTooLong { days: u32, max_days: u32 },
}

impl MongoSetupError {
    /// Wraps a failed set-up step, telling "cannot reach" from "refused".
    pub(crate) fn from_driver(error: DriverError) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Rejected(error)
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync>;

/// What the adapter was doing when it failed: the first link of the cause chain in the logs.
#[derive(Debug, thiserror::Error)]
#[error("MongoDB failed while {action}")]
pub(crate) struct Failed {
    action: &'static str,
    #[source]
    source: Source,
}

/// Maps a driver failure while doing `action` to the port's error.
pub(crate) fn repository_error(
    action: &'static str,
) -> impl FnOnce(DriverError) -> RepositoryError {
    move |error| {
        let unavailable = is_unavailable(&error);
        let failed = Failed {
            action,
            source: Box::new(error),
        };
        if unavailable {
            RepositoryError::unavailable(failed)
        } else {
            RepositoryError::internal(failed)
        }
    }
}

/// Maps a reply that cannot be read, after doing `action`, to the port's error.
pub(crate) fn unreadable<E>(action: &'static str) -> impl FnOnce(E) -> RepositoryError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| {
        RepositoryError::internal(Failed {
            action,
            source: Box::new(error),
        })
    }
}

/// Labels the driver puts on failures that a later attempt may not meet.
const TRANSIENT_LABELS: [&str; 4] = [
    RETRYABLE_WRITE_ERROR,
    RETRYABLE_ERROR,
    SYSTEM_OVERLOADED_ERROR,
    TRANSIENT_TRANSACTION_ERROR,
];

/// Server error codes that mean "cannot serve right now", not "your request is wrong":
/// unreachable or stepping-down members, shutdown, timeouts, lagging write concern.
const TRANSIENT_CODES: [i32; 16] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    64,    // WriteConcernFailed (wtimeout)
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// Whether `error` means the store cannot be reached or cannot take the operation right now:
/// network and pool failures, no selectable server, a closing client, and the server codes
/// and labels that mean the same.
pub(crate) fn is_unavailable(error: &DriverError) -> bool {
    if TRANSIENT_LABELS
        .iter()
        .any(|label| error.contains_label(label))
    {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => true,
        ErrorKind::Command(failure) => is_transient_code(failure.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(failure)) => {
            is_transient_code(failure.code)
        }
        ErrorKind::InsertMany(failure) => {
            let concern = failure
                .write_concern_error
                .as_ref()
                .is_some_and(|concern| is_transient_code(concern.code));
            let writes = failure
                .write_errors
                .iter()
                .flatten()
                .any(|write| is_transient_code(write.code));
            concern || writes
        }
        _ => false,
    }
}

fn is_transient_code(code: i32) -> bool {
    TRANSIENT_CODES.contains(&code)
}

#[cfg(test)]
mod tests {
    use std::io;

    use mongodb::bson::{doc, from_document};
    use mongodb::error::CommandError;

    use super::*;

    fn command_error(code: i32) -> DriverError {
        let failure: CommandError =
            from_document(doc! { "code": code, "codeName": "Test", "errmsg": "test" }).unwrap();
        ErrorKind::Command(failure).into()
    }

    #[test]
    fn network_failures_are_unavailable() {
        let refused = DriverError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            repository_error("testing")(refused),
            RepositoryError::Unavailable(_)
        ));
    }

    #[test]
    fn the_cause_chain_says_what_the_adapter_was_doing() {
        use std::error::Error as _;

        let refused = DriverError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let error = repository_error("pinging the database")(refused);
        let cause = error.source().unwrap();
        assert_eq!(
            cause.to_string(),
            "MongoDB failed while pinging the database"
        );
        assert!(cause.source().unwrap().to_string().contains("I/O error"));
    }

    #[test]
    fn a_stepping_down_primary_is_unavailable_and_a_bad_command_is_internal() {
        assert!(matches!(
            repository_error("testing")(command_error(189)),
            RepositoryError::Unavailable(_)
        ));
        assert!(matches!(
            repository_error("testing")(command_error(2)),
            RepositoryError::Internal(_)
        ));
    }

    #[test]
    fn setup_errors_tell_unreachable_from_refused() {
        let refused = DriverError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(
            MongoSetupError::from_driver(refused),
            MongoSetupError::Unavailable(_)
        ));
        assert!(matches!(
            MongoSetupError::from_driver(command_error(18)),
            MongoSetupError::Rejected(_)
        ));
    }
}
