//! Group commit: one thread owns the write connection and commits concurrent batches together.
//!
//! SQLite runs one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync of the write-ahead log. A transaction per request therefore caps ingest at the
//! disk's fsync rate, and writers on separate connections spend their time in SQLite's busy
//! handler, which sleeps. Instead, every insert is queued to a single writer thread, which
//! takes whatever has queued up meanwhile, inserts it in one transaction, commits once and
//! only then answers each request. A reply still means "committed and fsynced", the promise
//! a transaction per request gave, but one fsync now covers many requests.

use std::thread;

use chrono::Utc;
use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{self, Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};
use usage_domain::{RepositoryError, UsageRecord};

use crate::error::from_sqlite;
use crate::insert::{InsertSql, insert_records};

/// Most rows one commit gathers; a single request is never split, whatever its size.
const GROUP_ROWS: usize = 5_000;
/// Requests that may wait for the writer; further ones wait to be queued.
const QUEUE_LENGTH: usize = 1_024;
/// Pages of the writer's cache (negative: KiB). Inserts touch pages all over three indexes
/// and the aggregates; a larger cache saves re-reading them from the OS at every commit.
/// (`temp_store=MEMORY` also keeps statement journals off the disk.)
const WRITER_CACHE_KIB: i64 = 32 * 1_024;

/// Log pages (4 KiB each) after which a commit copies the log into the database file;
/// SQLite's default is 1,000. Inserts rewrite the same index pages again and again, and a page is
/// copied once per checkpoint however often it changed, so rarer checkpoints copy (and fsync)
/// much less: measured, 10,000 pages gave a quarter more ingest than 1,000, and more than a
/// checkpoint thread running beside the writer (whose checkpoints never complete while
/// writes go on, so the log only grows). The log file stays near 40 MB.
const WRITER_CHECKPOINT: i64 = 10_000;

/// One request's records, and where its result goes.
struct Insert {
    user: String,
    records: Vec<UsageRecord>,
    reply: oneshot::Sender<rusqlite::Result<u64>>,
}

/// The writer thread has stopped (it only stops when the repository is dropped).
#[derive(Debug, thiserror::Error)]
#[error("the SQLite writer thread has stopped")]
struct WriterStopped;

/// A handle to the writer thread; cloning shares the thread.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Insert>,
}

impl Writer {
    /// Starts the writer thread on `connection`, kept for the thread's lifetime. The thread
    /// ends when every handle is dropped.
    pub(crate) fn start(
        connection: PooledConnection<SqliteConnectionManager>,
    ) -> std::io::Result<Self> {
        connection
            .pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .and_then(|()| connection.pragma_update(None, "temp_store", "MEMORY"))
            .and_then(|()| connection.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT))
            .map_err(std::io::Error::other)?;
        let (queue, requests) = mpsc::channel(QUEUE_LENGTH);
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, requests))?;
        Ok(Self { queue })
    }

    /// Fails when the writer thread has stopped, which only a bug can cause: then no insert
    /// can succeed, so the store must not count as ready.
    pub(crate) fn check(&self) -> Result<(), RepositoryError> {
        if self.queue.is_closed() {
            return Err(RepositoryError::internal(WriterStopped));
        }
        Ok(())
    }

    /// Stores the records not stored yet for `user`; returns how many it stored, once they
    /// are durably committed.
    pub(crate) async fn insert(
        &self,
        user: String,
        records: Vec<UsageRecord>,
    ) -> Result<u64, RepositoryError> {
        let (reply, result) = oneshot::channel();
        let insert = Insert {
            user,
            records,
            reply,
        };
        self.queue
            .send(insert)
            .await
            .map_err(|_| RepositoryError::unavailable(WriterStopped))?;
        result
            .await
            .map_err(|_| RepositoryError::unavailable(WriterStopped))?
            .map_err(from_sqlite)
    }
}

/// The writer thread: gathers what is queued, commits it, answers, and waits for more.
fn run(
    mut connection: PooledConnection<SqliteConnectionManager>,
    mut requests: mpsc::Receiver<Insert>,
) {
    let mut sql = InsertSql::default();
    while let Some(first) = requests.blocking_recv() {
        let mut rows = first.records.len();
        let mut group = vec![first];
        while rows < GROUP_ROWS {
            let Ok(next) = requests.try_recv() else { break };
            rows += next.records.len();
            group.push(next);
        }
        commit(&mut connection, &mut sql, group);
    }
}

/// Commits a group and answers each request; if the group fails, each request is retried
/// in a transaction of its own, so one request's failure never fails its neighbours.
fn commit(connection: &mut Connection, sql: &mut InsertSql, group: Vec<Insert>) {
    let single = group.len() == 1;
    match insert_all(connection, sql, &group) {
        Ok(counts) => {
            for (insert, count) in group.into_iter().zip(counts) {
                // A request that gave up waiting has dropped its receiver; nothing to do.
                let _ = insert.reply.send(Ok(count));
            }
        }
        Err(error) if single => {
            if let Some(insert) = group.into_iter().next() {
                let _ = insert.reply.send(Err(error));
            }
        }
        Err(_) => {
            for insert in group {
                let result = insert_all(connection, sql, std::slice::from_ref(&insert));
                let _ = insert.reply.send(result.map(|counts| counts[0]));
            }
        }
    }
}

/// Inserts every request's records in one immediate transaction; counts per request.
fn insert_all(
    connection: &mut Connection,
    sql: &mut InsertSql,
    group: &[Insert],
) -> rusqlite::Result<Vec<u64>> {
    let now = Utc::now().timestamp_millis();
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let counts = group
        .iter()
        .map(|insert| insert_records(&transaction, sql, &insert.user, &insert.records, now))
        .collect::<rusqlite::Result<Vec<u64>>>()?;
    transaction.commit()?;
    Ok(counts)
}
