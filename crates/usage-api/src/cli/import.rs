//! `usage-service import FILE --user USER`: load records from a file through the sync rules.
//!
//! A reader thread streams the file (the web client's backup object, or NDJSON with one
//! record per line) and hands on chunks of raw record texts over a small bounded channel;
//! the import parses each chunk with [`UsageService::parse_batch`] and stores it with
//! [`UsageService::store`], exactly as `POST /api/usage/sync` does. Memory stays bounded by a
//! few chunks whatever the file's size. Records are judged against the current time and the
//! configured retention, so records older than retention are rejected, as at sync.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use tokio::sync::mpsc;
use usage_domain::{Batch, RecordError, ServiceError, UsageService, UserId};

use super::backup;

/// Records parsed and stored together; the web client's own batches are far smaller.
pub const DEFAULT_CHUNK: usize = 500;
/// Rejections listed one by one in the tally; the rest are only counted.
pub const LISTED_REJECTIONS: usize = 20;
/// Chunks read ahead of the store.
const READ_AHEAD: usize = 2;

/// How the file lays out its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// NDJSON for a `.ndjson` or `.jsonl` file; otherwise a backup, or NDJSON when the
    /// first object has no `executions` key.
    Auto,
    /// The web client's backup: `{"executions": [...], "chatMessages": [...], ...}`.
    Backup,
    /// One execution record per line; blank lines are skipped.
    Ndjson,
}

/// What to import, and for whom.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub path: PathBuf,
    pub user: UserId,
    pub format: InputFormat,
    /// Records per chunk, at least 1.
    pub chunk_size: usize,
}

/// What an import did, so far or in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportTally {
    /// Records found in the file.
    pub read: u64,
    pub stored: u64,
    /// Already stored, or repeated earlier in the file.
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejections per [`RecordError::kind`].
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    /// The first [`LISTED_REJECTIONS`] rejections: `executions[i]: reason` for a backup,
    /// `line n: reason` for NDJSON.
    pub first_rejections: Vec<String>,
}

/// Why an import stopped before the end of its file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable backup file")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has no \"executions\" array: it is not the web client's backup file")]
    NotABackup { path: PathBuf },
    #[error("the store failed")]
    Store(#[source] ServiceError),
    #[error("the file reader stopped unexpectedly")]
    Reader(#[source] tokio::task::JoinError),
}

/// An import that stopped, with what it had done until then.
#[derive(Debug)]
pub struct ImportFailure {
    pub error: ImportError,
    pub tally: ImportTally,
}

/// Records as read, each with its position: an index in `executions`, or a line number.
#[derive(Debug)]
struct Chunk {
    labels: Labels,
    records: Vec<(u64, String)>,
}

/// Imports the file of `options` for its user, counting progress in bytes on `progress`.
pub async fn import(
    service: &UsageService,
    options: &ImportOptions,
    progress: &ProgressBar,
) -> Result<ImportTally, ImportFailure> {
    let (sender, mut receiver) = mpsc::channel::<Chunk>(READ_AHEAD);
    let reader = {
        let (options, progress) = (options.clone(), progress.clone());
        tokio::task::spawn_blocking(move || read_file(&options, &progress, &sender))
    };

    let mut tally = ImportTally::default();
    while let Some(chunk) = receiver.recv().await {
        if let Err(error) = store_chunk(service, options, chunk, &mut tally).await {
            return Err(ImportFailure { error, tally });
        }
        progress.set_message(format!(
            "{} stored, {} duplicates, {} rejected",
            tally.stored, tally.duplicates, tally.rejected
        ));
    }
    let error = match reader.await {
        Ok(Ok(())) => return Ok(tally),
        Ok(Err(error)) => error,
        Err(join) => ImportError::Reader(join),
    };
    Err(ImportFailure { error, tally })
}

/// How rejections name a record's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Labels {
    /// `executions[i]`, zero-based, in a backup.
    Index,
    /// `line n`, one-based, in NDJSON.
    Line,
}

impl Labels {
    fn name(self, position: u64) -> String {
        match self {
            Self::Index => format!("executions[{position}]"),
            Self::Line => format!("line {position}"),
        }
    }
}

/// Parses and stores one chunk, adding its outcome to `tally`.
async fn store_chunk(
    service: &UsageService,
    options: &ImportOptions,
    chunk: Chunk,
    tally: &mut ImportTally,
) -> Result<(), ImportError> {
    let positions: Vec<u64> = chunk
        .records
        .iter()
        .map(|(position, _)| *position)
        .collect();
    let texts = chunk.records.iter().map(|(_, text)| text.as_str());
    let batch: Batch = service.parse_batch(texts);
    // The texts may hold prompt and response text: gone before waiting on the store.
    drop(chunk.records);
    tally.read += positions.len() as u64;
    for rejection in &batch.rejected {
        let position = positions.get(rejection.index).copied().unwrap_or_default();
        count_rejection(tally, chunk.labels.name(position), &rejection.error);
    }
    let report = service
        .store(&options.user, batch)
        .await
        .map_err(ImportError::Store)?;
    tally.stored += report.synced;
    tally.duplicates += report.duplicates;
    Ok(())
}

fn count_rejection(tally: &mut ImportTally, position: String, error: &RecordError) {
    tally.rejected += 1;
    *tally.rejected_by_reason.entry(error.kind()).or_default() += 1;
    if tally.first_rejections.len() < LISTED_REJECTIONS {
        tally.first_rejections.push(format!("{position}: {error}"));
    }
}

/// Reads the whole file into chunks on `sender`.
fn read_file(
    options: &ImportOptions,
    progress: &ProgressBar,
    sender: &mpsc::Sender<Chunk>,
) -> Result<(), ImportError> {
    let path = options.path.as_path();
    let ndjson_by_name = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("ndjson") || ext.eq_ignore_ascii_case("jsonl"));
    let format = match options.format {
        InputFormat::Auto if ndjson_by_name => InputFormat::Ndjson,
        format => format,
    };
    if format != InputFormat::Ndjson {
        let file = open(path, progress)?;
        let mut chunker = Chunker::new(options.chunk_size, Labels::Index, sender);
        let found = backup::read(file, &mut |text| chunker.push(text)).map_err(|source| {
            ImportError::Json {
                path: path.to_owned(),
                source,
            }
        })?;
        if found {
            chunker.flush();
            return Ok(());
        }
        if format == InputFormat::Backup {
            return Err(ImportError::NotABackup {
                path: path.to_owned(),
            });
        }
        progress.set_position(0);
    }
    let mut chunker = Chunker::new(options.chunk_size, Labels::Line, sender);
    read_ndjson(open(path, progress)?, path, &mut chunker)?;
    chunker.flush();
    Ok(())
}

fn open(path: &Path, progress: &ProgressBar) -> Result<impl Read, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(progress.wrap_read(file))
}

/// One record per non-blank line, labelled with its line number.
fn read_ndjson(file: impl Read, path: &Path, chunker: &mut Chunker<'_>) -> Result<(), ImportError> {
    let mut lines = BufReader::new(file);
    let mut line = String::new();
    for number in 1.. {
        line.clear();
        let read = lines
            .read_line(&mut line)
            .map_err(|source| ImportError::Read {
                path: path.to_owned(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        if !line.trim().is_empty() && chunker.push_at(number, line.trim().to_owned()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Gathers record texts into chunks and sends each full one, waiting while the store is busy.
struct Chunker<'s> {
    size: usize,
    labels: Labels,
    chunk: Vec<(u64, String)>,
    next_index: u64,
    sender: &'s mpsc::Sender<Chunk>,
}

impl<'s> Chunker<'s> {
    fn new(size: usize, labels: Labels, sender: &'s mpsc::Sender<Chunk>) -> Self {
        Self {
            size: size.max(1),
            labels,
            chunk: Vec::new(),
            next_index: 0,
            sender,
        }
    }

    /// Adds the next record of a backup, labelled by its index in `executions`.
    fn push(&mut self, text: String) -> Result<(), String> {
        let index = self.next_index;
        self.push_at(index, text)
    }

    fn push_at(&mut self, position: u64, text: String) -> Result<(), String> {
        self.next_index += 1;
        self.chunk.push((position, text));
        if self.chunk.len() >= self.size {
            // Fails only when the import stopped on a store failure, the error to report.
            self.send().map_err(|_| "the import stopped".to_owned())?;
        }
        Ok(())
    }

    fn flush(&mut self) {
        if !self.chunk.is_empty() {
            let _ = self.send();
        }
    }

    fn send(&mut self) -> Result<(), mpsc::error::SendError<Chunk>> {
        self.sender.blocking_send(Chunk {
            labels: self.labels,
            records: std::mem::take(&mut self.chunk),
        })
    }
}
