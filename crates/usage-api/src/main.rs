//! `usage-service`: serve the usage API (the default), or mint a token for local use.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use usage_api::auth::{TokenRequest, mint_hs256};
use usage_api::settings::Settings;
use usage_api::startup::{self, Application, StoreUrl};
use usage_api::telemetry;
use usage_domain::{Retention, SystemClock};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load().context("while loading the configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Token { sub, ttl } => print_token(&settings, sub, ttl),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    runtime.block_on(async {
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
