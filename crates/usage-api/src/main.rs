//! `usage-service`: serve the usage API (the default), mint a token for local use, import a
//! file of records, or erase a user's records.
//!
//! Every command reads the same settings; `import` and `purge` work on the configured store
//! (`USAGE_DATABASE_URL`) directly. A failure prints one line, `error: ...` with its causes,
//! and exits with status 1.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use usage_api::auth::{TokenRequest, mint_hs256};
use usage_api::cli::{self, ImportOptions, ImportTally, InputFormat};
use usage_api::settings::Settings;
use usage_api::startup::{self, Application, StoreUrl};
use usage_api::telemetry;
use usage_domain::{Retention, SystemClock, UsageService, UserId};

/// Records and reports LLM usage for the offline-first web app.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (what running with no arguments does).
    Serve,
    /// Print a token signed with USAGE_JWT_SECRET, for local use and tests.
    Token {
        /// The user id to put in the `sub` claim.
        #[arg(long)]
        sub: String,
        /// How long the token stays valid, such as 30m, 1h or 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Import the web client's backup file, or NDJSON with one record per line, for a user.
    ///
    /// Records go through the same validation and deduplication as a sync: invalid ones are
    /// reported and skipped, ones already stored are counted as duplicates. Running the same
    /// import again stores nothing twice.
    Import {
        /// The file to read.
        file: PathBuf,
        /// The user the records belong to (the `sub` of that user's tokens).
        #[arg(long)]
        user: String,
        /// How the file lays out its records.
        #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
        format: InputFormat,
    },
    /// Erase every record of a user from the store (the right to erasure).
    Purge {
        /// The user whose records are erased.
        #[arg(long)]
        user: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load().context("while loading the configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Token { sub, ttl } => print_token(&settings, sub, ttl),
        Command::Import { file, user, format } => {
            let user = parse_user(&user)?;
            let options = ImportOptions {
                path: file,
                user,
                format,
                chunk_size: cli::import::DEFAULT_CHUNK,
            };
            run_command(&settings, |service| import(service, options))
        }
        Command::Purge { user } => {
            let user = parse_user(&user)?;
            run_command(&settings, |service| purge(service, user))
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(settings.log_format);
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    for unknown in Settings::unknown_variables(names.iter().map(String::as_str)) {
        tracing::warn!(variable = %unknown, "ignoring an environment variable that is no setting");
    }
    runtime()?.block_on(async {
        let store = StoreUrl::parse(&settings.database_url)?;
        let retention = Retention::days(settings.retention_days).unwrap_or_default();
        let repository = startup::open_store(&store, retention)
            .await
            .context("while opening the store")?;
        let authenticator = usage_api::auth::from_settings(&settings)?;
        let application =
            Application::build(&settings, repository, authenticator, Arc::new(SystemClock))?;
        application
            .run_until_stopped()
            .await
            .context("while serving")
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")
}

fn parse_user(raw: &str) -> anyhow::Result<UserId> {
    UserId::parse(raw).with_context(|| format!("--user {raw:?} is not a user id"))
}

/// Opens the configured store and runs `command` on a service over it.
fn run_command<F, Fut>(settings: &Settings, command: F) -> anyhow::Result<()>
where
    F: FnOnce(UsageService) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    telemetry::init_for_command(settings.log_format);
    runtime()?.block_on(async {
        let store = StoreUrl::parse(&settings.database_url)?;
        let retention = Retention::days(settings.retention_days).unwrap_or_default();
        let repository = startup::open_store(&store, retention)
            .await
            .context("while opening the store")?;
        command(UsageService::new(
            repository,
            Arc::new(SystemClock),
            retention,
        ))
        .await
    })
}

async fn import(service: UsageService, options: ImportOptions) -> anyhow::Result<()> {
    let progress = progress_bar(&options.path);
    let outcome = cli::import(&service, &options, &progress).await;
    progress.finish_and_clear();
    match outcome {
        Ok(tally) => {
            print_tally(&options, &tally);
            Ok(())
        }
        Err(failure) => Err(anyhow::Error::new(failure.error).context(format!(
            "while importing {} ({} records stored before the failure; importing the file \
             again skips them as duplicates)",
            options.path.display(),
            failure.tally.stored
        ))),
    }
}

/// A bar of bytes read on standard error, hidden when standard error is not a terminal.
fn progress_bar(path: &std::path::Path) -> ProgressBar {
    let length = std::fs::metadata(path).map(|meta| meta.len()).ok();
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(length, target);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} ({eta} left) {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn print_tally(options: &ImportOptions, tally: &ImportTally) {
    println!(
        "imported {} for user {}",
        options.path.display(),
        options.user
    );
    println!("read: {}", tally.read);
    println!("stored: {}", tally.stored);
    println!("duplicates: {}", tally.duplicates);
    println!("rejected: {}", tally.rejected);
    if tally.rejected == 0 {
        return;
    }
    let reasons: Vec<String> = tally
        .rejected_by_reason
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    println!("rejected by reason: {}", reasons.join(", "));
    for rejection in &tally.first_rejections {
        println!("  {rejection}");
    }
    let unlisted = tally.rejected - tally.first_rejections.len() as u64;
    if unlisted > 0 {
        println!("  ... and {unlisted} more");
    }
}

async fn purge(service: UsageService, user: UserId) -> anyhow::Result<()> {
    let deleted = cli::purge(&service, &user)
        .await
        .with_context(|| format!("while erasing the records of user {user}"))?;
    println!("erased {deleted} records of user {user}");
    Ok(())
}

fn print_token(settings: &Settings, subject: String, ttl: Duration) -> anyhow::Result<()> {
    let Some(secret) = &settings.jwt_secret else {
        bail!("USAGE_JWT_SECRET is not set; tokens are signed with it");
    };
    let request = TokenRequest {
        subject,
        ttl,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    };
    println!(
        "{}",
        mint_hs256(secret, &request).context("while signing the token")?
    );
    Ok(())
}
