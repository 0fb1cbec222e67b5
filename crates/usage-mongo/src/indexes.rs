//! The indexes of `usages`, created idempotently at start-up and reconciled with the
//! configured retention.
//!
//! - `user_execution_unique`: `{userId: 1, executionId: 1}`, unique; deduplication per user,
//!   also between concurrent requests;
//! - `user_timestamp`: `{userId: 1, timestamp: -1}`; the summary and stats range queries;
//! - `provider`: `{provider: 1}`; operators' queries by provider;
//! - `timestamp_ttl`: `{timestamp: 1}` with `expireAfterSeconds` = retention; the server
//!   deletes expired records itself.
//!
//! An index with the same keys under another name (left by an earlier deployment, say) is
//! accepted as it is. An index whose keys or uniqueness differ from the table is never
//! dropped by the adapter: set-up fails and names it, and an operator decides.

use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{Error as DriverError, ErrorKind};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use tracing::info;
use usage_domain::Retention;

use crate::document::count_of;
use crate::error::MongoSetupError;

pub const UNIQUE_INDEX: &str = "user_execution_unique";
pub const RANGE_INDEX: &str = "user_timestamp";
pub const PROVIDER_INDEX: &str = "provider";
pub const TTL_INDEX: &str = "timestamp_ttl";

/// One index of a collection, as `listIndexes` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    /// The key pattern in order; whole-number directions are read as `Bson::Int32`, whatever
    /// numeric type the server used.
    pub keys: Vec<(String, Bson)>,
    pub unique: bool,
    /// Set on TTL indexes only.
    pub expire_after_seconds: Option<i64>,
}

impl IndexSpec {
    /// Reads one `listIndexes` entry.
    pub(crate) fn from_listing(listing: &Document) -> Result<Self, MongoSetupError> {
        let unreadable =
            |what: &str| MongoSetupError::UnreadableIndex(format!("{what}: {listing}"));
        let name = listing.get_str("name").map_err(|_| unreadable("no name"))?;
        let keys = listing
            .get_document("key")
            .map_err(|_| unreadable("no key pattern"))?;
        let expire_after_seconds = match listing.get("expireAfterSeconds") {
            None => None,
            Some(value) => Some(
                count_of(value)
                    .and_then(|seconds| i64::try_from(seconds).ok())
                    .ok_or_else(|| unreadable("expireAfterSeconds is not a whole number"))?,
            ),
        };
        Ok(Self {
            name: name.to_owned(),
            keys: keys
                .iter()
                .map(|(field, direction)| (field.clone(), normalized(direction)))
                .collect(),
            unique: listing.get("unique").is_some_and(is_truthy),
            expire_after_seconds,
        })
    }

    /// Whether this index has exactly `keys`, in order.
    pub fn has_keys(&self, keys: &[(&str, i32)]) -> bool {
        self.keys.len() == keys.len()
            && self.keys.iter().zip(keys).all(
                |((field, direction), (want_field, want_direction))| {
                    field == want_field && *direction == Bson::Int32(*want_direction)
                },
            )
    }
}

/// `1`, `1_i64` and `1.0` are the same direction; other values (`"text"`, say) stay as they are.
fn normalized(direction: &Bson) -> Bson {
    let whole = match direction {
        Bson::Int32(number) => Some(i64::from(*number)),
        Bson::Int64(number) => Some(*number),
        Bson::Double(number) if number.fract() == 0.0 && number.abs() <= f64::from(i32::MAX) => {
            Some(*number as i64)
        }
        _ => None,
    };
    match whole.and_then(|number| i32::try_from(number).ok()) {
        Some(number) => Bson::Int32(number),
        None => direction.clone(),
    }
}

/// Old tools wrote `unique: 1` as often as `unique: true`.
fn is_truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(flag) => *flag,
        other => count_of(other).is_some_and(|number| number != 0),
    }
}

/// An index the adapter needs.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    name: &'static str,
    keys: &'static [(&'static str, i32)],
    unique: bool,
    expire_after_seconds: Option<i64>,
}

impl Wanted {
    fn model(&self) -> IndexModel {
        let mut keys = Document::new();
        for (field, direction) in self.keys {
            keys.insert(*field, *direction);
        }
        let options = IndexOptions::builder()
            .name(self.name.to_owned())
            .unique(self.unique.then_some(true))
            .expire_after(
                self.expire_after_seconds
                    .map(|seconds| Duration::from_secs(seconds.unsigned_abs())),
            )
            .build();
        IndexModel::builder().keys(keys).options(options).build()
    }
}

/// The largest `expireAfterSeconds` MongoDB accepts: a 32-bit signed integer.
const MAX_EXPIRE_AFTER_SECONDS: i64 = i32::MAX as i64;
const SECONDS_PER_DAY: i64 = 86_400;

/// The retention as a TTL, or the reason MongoDB cannot hold it.
pub(crate) fn ttl_seconds(retention: Retention) -> Result<i64, MongoSetupError> {
    let seconds = i64::from(retention.as_days()) * SECONDS_PER_DAY;
    if seconds > MAX_EXPIRE_AFTER_SECONDS {
        return Err(MongoSetupError::RetentionTooLong {
            days: retention.as_days(),
            max_days: (MAX_EXPIRE_AFTER_SECONDS / SECONDS_PER_DAY) as u32,
        });
    }
    Ok(seconds)
}

fn wanted(ttl_seconds: i64) -> [Wanted; 4] {
    [
        Wanted {
            name: UNIQUE_INDEX,
            keys: &[("userId", 1), ("executionId", 1)],
            unique: true,
            expire_after_seconds: None,
        },
        Wanted {
            name: RANGE_INDEX,
            keys: &[("userId", 1), ("timestamp", -1)],
            unique: false,
            expire_after_seconds: None,
        },
        Wanted {
            name: PROVIDER_INDEX,
            keys: &[("provider", 1)],
            unique: false,
            expire_after_seconds: None,
        },
        Wanted {
            name: TTL_INDEX,
            keys: &[("timestamp", 1)],
            unique: false,
            expire_after_seconds: Some(ttl_seconds),
        },
    ]
}

/// Lists the indexes of `collection`; none while the collection does not exist yet.
pub(crate) async fn list(collection: &Collection<Document>) -> Result<Vec<IndexSpec>, ListError> {
    let mut cursor = match collection.list_indexes().await {
        Ok(cursor) => cursor.with_type::<Document>(),
        Err(error) if is_namespace_not_found(&error) => return Ok(Vec::new()),
        Err(error) => return Err(ListError::Driver(error)),
    };
    let mut specs = Vec::new();
    while cursor.advance().await.map_err(ListError::Driver)? {
        let listing = cursor.deserialize_current().map_err(ListError::Driver)?;
        specs.push(IndexSpec::from_listing(&listing).map_err(ListError::Unreadable)?);
    }
    Ok(specs)
}

/// Why the indexes could not be listed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListError {
    #[error(transparent)]
    Driver(DriverError),
    #[error(transparent)]
    Unreadable(MongoSetupError),
}

impl From<ListError> for MongoSetupError {
    fn from(error: ListError) -> Self {
        match error {
            ListError::Driver(error) => Self::from_driver(error),
            ListError::Unreadable(error) => error,
        }
    }
}

fn is_namespace_not_found(error: &DriverError) -> bool {
    const NAMESPACE_NOT_FOUND: i32 = 26;
    matches!(
        error.kind.as_ref(),
        ErrorKind::Command(failure) if failure.code == NAMESPACE_NOT_FOUND
    )
}

/// Creates the missing indexes and reconciles the TTL with `retention`.
///
/// Two instances starting at once may both find an index missing and race to create it with
/// different options; the loser's `createIndexes` then fails with an options conflict, and
/// one more round of listing and reconciling settles it.
pub(crate) async fn ensure(
    collection: &Collection<Document>,
    retention: Retention,
) -> Result<(), MongoSetupError> {
    let wanted = wanted(ttl_seconds(retention)?);
    match ensure_once(collection, &wanted).await {
        Err(MongoSetupError::Rejected(error)) if is_options_conflict(&error) => {
            info!("another instance changed the indexes of `usages` meanwhile; checking again");
            ensure_once(collection, &wanted).await
        }
        result => result,
    }
}

fn is_options_conflict(error: &DriverError) -> bool {
    const INDEX_OPTIONS_CONFLICT: i32 = 85;
    const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
    matches!(
        error.kind.as_ref(),
        ErrorKind::Command(failure)
            if [INDEX_OPTIONS_CONFLICT, INDEX_KEY_SPECS_CONFLICT].contains(&failure.code)
    )
}

async fn ensure_once(
    collection: &Collection<Document>,
    wanted: &[Wanted],
) -> Result<(), MongoSetupError> {
    let existing = list(collection).await?;
    let mut missing = Vec::new();
    for want in wanted {
        match find_existing(&existing, want)? {
            Some(found) => reconcile(collection, want, found).await?,
            None => missing.push(*want),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }

    let models = missing.iter().map(Wanted::model);
    collection
        .create_indexes(models)
        .await
        .map_err(MongoSetupError::from_driver)?;
    for want in &missing {
        info!(index = want.name, "created index on `usages`");
    }
    Ok(())
}

/// The existing index for `want`: the one of the same name, else one with the same keys.
fn find_existing<'a>(
    existing: &'a [IndexSpec],
    want: &Wanted,
) -> Result<Option<&'a IndexSpec>, MongoSetupError> {
    let by_name = existing.iter().find(|spec| spec.name == want.name);
    if let Some(spec) = by_name.filter(|spec| !spec.has_keys(want.keys)) {
        return Err(MongoSetupError::IndexConflict {
            name: spec.name.clone(),
            reason: format!("its keys are {:?}, not {:?}", spec.keys, want.keys),
        });
    }
    let found = by_name.or_else(|| existing.iter().find(|spec| spec.has_keys(want.keys)));
    if let Some(spec) = found.filter(|spec| spec.unique != want.unique) {
        return Err(MongoSetupError::IndexConflict {
            name: spec.name.clone(),
            reason: format!("it is {}unique", if spec.unique { "" } else { "not " }),
        });
    }
    Ok(found)
}

/// Brings an existing index's TTL to the wanted one with `collMod`, which keeps the index
/// (and the data it covers) in place, unlike dropping and re-creating it.
async fn reconcile(
    collection: &Collection<Document>,
    want: &Wanted,
    found: &IndexSpec,
) -> Result<(), MongoSetupError> {
    let Some(seconds) = want.expire_after_seconds else {
        info!(index = %found.name, "index on `usages` already present");
        return Ok(());
    };
    if found.expire_after_seconds == Some(seconds) {
        info!(index = %found.name, expire_after_seconds = seconds, "TTL index already present");
        return Ok(());
    }

    let command = doc! {
        "collMod": collection.name(),
        "index": { "name": found.name.as_str(), "expireAfterSeconds": seconds },
    };
    collection
        .client()
        .database(collection.namespace().db.as_str())
        .run_command(command)
        .await
        .map_err(MongoSetupError::from_driver)?;
    info!(
        index = %found.name,
        from = found.expire_after_seconds,
        to = seconds,
        "changed the TTL of the `usages` index to the configured retention"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(document: Document) -> IndexSpec {
        IndexSpec::from_listing(&document).unwrap()
    }

    #[test]
    fn the_ttl_is_the_retention_in_seconds_within_the_32_bit_limit() {
        assert_eq!(ttl_seconds(Retention::default()).unwrap(), 7_776_000);
        assert_eq!(
            ttl_seconds(Retention::days(24_855).unwrap()).unwrap(),
            2_147_472_000
        );
        assert_eq!(
            Retention::MAX_DAYS,
            24_855,
            "the domain's longest retention is the longest TTL MongoDB can hold"
        );
    }

    #[test]
    fn listings_are_read_whatever_numeric_types_the_server_used() {
        let spec = listing(doc! {
            "v": 2, "name": "timestamp_1", "key": { "timestamp": 1.0 },
            "expireAfterSeconds": 3600_i64, "unique": 1,
        });
        assert!(spec.has_keys(&[("timestamp", 1)]));
        assert_eq!(spec.expire_after_seconds, Some(3600));
        assert!(spec.unique);
        assert!(!spec.has_keys(&[("timestamp", -1)]));
    }

    #[test]
    fn an_index_of_the_same_keys_under_another_name_is_accepted() {
        let existing = [listing(doc! {
            "name": "userId_1_executionId_1",
            "key": { "userId": 1, "executionId": 1 },
            "unique": true,
        })];
        let found = find_existing(&existing, &wanted(60)[0]).unwrap();
        assert_eq!(found.unwrap().name, "userId_1_executionId_1");
    }

    #[test]
    fn a_non_unique_index_on_the_dedup_keys_is_a_conflict() {
        let existing = [listing(doc! {
            "name": "userId_1_executionId_1",
            "key": { "userId": 1, "executionId": 1 },
        })];
        let error = find_existing(&existing, &wanted(60)[0]).unwrap_err();
        assert!(error.to_string().contains("not unique"), "{error}");
    }

    #[test]
    fn our_name_on_other_keys_is_a_conflict() {
        let existing = [listing(
            doc! { "name": TTL_INDEX, "key": { "createdAt": 1 } },
        )];
        assert!(matches!(
            find_existing(&existing, &wanted(60)[3]),
            Err(MongoSetupError::IndexConflict { .. })
        ));
    }
}
