//! Property-style check, on seeded random data, that the pre-aggregates answer exactly what
//! the raw rows give: after inserts with duplicates, retention purges at millisecond cut-offs
//! and user deletions, for random millisecond ranges in time zones whose midnights do and do
//! not fall on bucket boundaries.

use std::path::Path;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rusqlite::Connection;
use rusqlite::types::Value;
use usage_domain::{
    ExecutionId, ExecutionMode, Model, Provider, StatsWindows, SummaryGroup, TimeRange, TokenUsage,
    UsageRecord, UsageRepository, UserId,
};

use crate::{SqliteUsageRepository, buckets, raw, schema};

const SEEDS: u64 = 6;
const USERS: [&str; 2] = ["alice", "bob"];
const SERIES: [(&str, &str); 3] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude"),
];
/// Zones whose midnights fall on whole hours, on 15 and 45 minutes, move by 30 minutes for
/// daylight time, or (Monrovia, -00:44:30 until 1972) cut 15-minute buckets.
const ZONES: [&str; 7] = [
    "UTC",
    "Europe/Berlin",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Africa/Monrovia",
];
/// How long each cluster of records lasts.
const CLUSTER: TimeDelta = TimeDelta::days(4);

/// SplitMix64: small, seeded, good enough to pick test data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An instant in one of the clusters: around the Unix epoch (negative timestamps and
    /// Monrovia's odd offset) or around the 2026 daylight-saving changes. Half of them fall
    /// within half an hour of some zone's local midnight, where day keys are easiest to get
    /// wrong.
    fn instant(&mut self) -> i64 {
        let starts = [
            Utc.with_ymd_and_hms(1969, 12, 30, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 27, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 4, 3, 0, 0, 0).unwrap(),
        ];
        let start = self.pick(&starts).timestamp_millis();
        if self.below(2) == 0 {
            return start + self.below(CLUSTER.num_milliseconds() as u64) as i64;
        }
        // UTC times of day at which a zone of ZONES starts its day, in seconds.
        let midnights = [
            0, 2_670, 9_000, 12_600, 36_900, 40_500, 46_800, 48_600, 65_700, 79_200, 82_800,
        ];
        let day = self.below(CLUSTER.num_days() as u64) as i64 * 86_400_000;
        let jitter = self.below(3_600_000) as i64 - 1_800_000;
        let near = start + day + self.pick(&midnights) * 1_000 + jitter;
        if self.below(2) == 0 {
            return near;
        }
        // On a bucket boundary, or a millisecond either side of it.
        near - near.rem_euclid(buckets::BUCKET_MS) + self.below(3) as i64 - 1
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn record(rng: &mut Rng, id: u64) -> UsageRecord {
    let (provider, model) = rng.pick(&SERIES);
    UsageRecord {
        id: ExecutionId::parse(format!("e{id}")).unwrap(),
        timestamp: at(rng.instant()),
        provider: Provider::parse(provider).unwrap(),
        model: Model::parse(model).unwrap(),
        tokens: TokenUsage::new(rng.below(1_000), rng.below(500), 0),
        duration_ms: 10.0,
        success: rng.below(4) != 0,
        error: None,
        execution_mode: ExecutionMode::Local,
        context: None,
        has_compiled_prompt: false,
        has_response: false,
    }
}

/// Inserts, re-sends, purges and deletes at random; ids come from a small pool so re-sends
/// are frequent.
async fn churn(repository: &SqliteUsageRepository, rng: &mut Rng) {
    for _ in 0..40 {
        let user = UserId::parse(rng.pick(&USERS)).unwrap();
        match rng.below(20) {
            0 => {
                repository
                    .delete_older_than(at(rng.instant()))
                    .await
                    .unwrap();
            }
            1 => {
                repository.delete_user(&user).await.unwrap();
            }
            _ => {
                let first = rng.below(2_000);
                let records: Vec<_> = (first..first + 1 + rng.below(150))
                    .map(|id| record(rng, id))
                    .collect();
                repository.insert_new(&user, &records).await.unwrap();
            }
        }
    }
}

type Rows = Vec<Vec<Value>>;

/// The aggregates table, and the same sums computed from the raw rows.
fn tables(connection: &Connection) -> (Rows, Rows) {
    let rows = |sql: &str| -> Rows {
        let mut statement = connection.prepare(sql).unwrap();
        statement
            .query_map([], |row| (0..9).map(|i| row.get(i)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let kept = rows(
        "SELECT user_id, bucket_ms, provider, model, executions, successes, prompt_tokens,
                completion_tokens, total_tokens
         FROM usage_buckets ORDER BY user_id, bucket_ms, provider, model",
    );
    let derived = rows(
        "SELECT user_id, timestamp_ms - ((timestamp_ms % 900000) + 900000) % 900000 AS b,
                provider, model, COUNT(*), SUM(success), SUM(prompt_tokens),
                SUM(completion_tokens), SUM(total_tokens)
         FROM usages GROUP BY user_id, b, provider, model
         ORDER BY user_id, b, provider, model",
    );
    (kept, derived)
}

fn sorted(mut groups: Vec<SummaryGroup>) -> Vec<SummaryGroup> {
    groups.sort_by(|a, b| (a.day, &a.provider, &a.model).cmp(&(b.day, &b.provider, &b.model)));
    groups
}

/// An end of a range: a random instant, or a stored timestamp give or take a millisecond,
/// so that records sit exactly on range ends.
fn end(connection: &Connection, rng: &mut Rng) -> i64 {
    if rng.below(2) == 0 {
        return rng.instant();
    }
    let stored: i64 = connection
        .query_row("SELECT COUNT(*) FROM usages", [], |row| row.get(0))
        .unwrap();
    let offset = rng.below(stored.max(1) as u64) as i64;
    let at: Option<i64> = connection
        .query_row(
            "SELECT timestamp_ms FROM usages ORDER BY timestamp_ms LIMIT 1 OFFSET ?1",
            [offset],
            |row| row.get(0),
        )
        .ok();
    at.unwrap_or_else(|| rng.instant()) + rng.below(3) as i64 - 1
}

/// A millisecond range, either way round, sometimes a single instant.
fn range(connection: &Connection, rng: &mut Rng) -> (i64, i64) {
    let a = end(connection, rng);
    let b = if rng.below(10) == 0 {
        a
    } else {
        end(connection, rng)
    };
    (a.min(b), a.max(b))
}

fn compare_queries(connection: &mut Connection, rng: &mut Rng) {
    for _ in 0..60 {
        let user = rng.pick(&USERS);
        let tz: Tz = rng.pick(&ZONES).parse().unwrap();
        let (from, to) = range(connection, rng);
        let span = TimeRange {
            start: at(from),
            end: at(to),
        };
        let fast = buckets::summary(connection, user, span, tz).unwrap();
        let reference = raw::summary(connection, user, (from, to), tz).unwrap();
        assert_eq!(sorted(fast), sorted(reference), "{user} {tz} {from}..={to}");

        let starts = [end(connection, rng), end(connection, rng), from];
        let windows = StatsWindows {
            today: at(starts[0].min(to)),
            week: at(starts[1].min(to)),
            month: at(starts[2]),
            end: at(to),
        };
        let fast = buckets::stats(connection, user, windows).unwrap();
        let window = |start: DateTime<Utc>| {
            raw::totals(connection, user, (start.timestamp_millis(), to)).unwrap()
        };
        assert_eq!(fast.today, window(windows.today));
        assert_eq!(fast.this_week, window(windows.week));
        assert_eq!(fast.this_month, window(windows.month));
    }
}

fn open_raw(path: &Path) -> Connection {
    let mut connection = Connection::open(path).unwrap();
    schema::configure(&mut connection).unwrap();
    connection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_equal_the_raw_rows_after_random_inserts_purges_and_deletions() {
    for seed in 0..SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.sqlite3");
        let repository = SqliteUsageRepository::open(&path).unwrap();
        let mut rng = Rng(seed);
        let mut connection = open_raw(&path);
        for _ in 0..3 {
            churn(&repository, &mut rng).await;
            let (kept, derived) = tables(&connection);
            assert_eq!(
                kept, derived,
                "seed {seed}: aggregates drifted from the rows"
            );
            compare_queries(&mut connection, &mut rng);
        }
    }
}

#[tokio::test]
async fn a_database_from_version_one_gets_its_existing_rows_summed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite3");
    {
        let connection = open_raw(&path);
        connection.execute_batch(schema::MIGRATIONS[0]).unwrap();
        connection.pragma_update(None, "user_version", 1).unwrap();
        connection
            .execute_batch(
                "INSERT INTO usages VALUES
                    ('alice', 'a', -1, 'p', 'm', 1, 2, 3, 0, 1, NULL, 'local', NULL, 0, 0, 0, 0),
                    ('alice', 'b', 5, 'p', 'm', 1, 2, 3, 0, 0, NULL, 'local', NULL, 0, 0, 0, 0),
                    ('alice', 'c', 7, 'p', 'm', 1, 2, 3, 0, 1, NULL, 'local', NULL, 0, 0, 0, 0);",
            )
            .unwrap();
    }
    let _repository = SqliteUsageRepository::open(&path).unwrap();
    let (kept, derived) = tables(&open_raw(&path));
    assert_eq!(kept.len(), 2, "one bucket before the epoch, one after");
    assert_eq!(kept, derived);
}
