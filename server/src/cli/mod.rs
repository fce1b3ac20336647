//! The `devsignal` command line: one binary, one subcommand per role.

pub mod backup;
pub mod billing;
pub mod doctor;
pub mod jobs;
pub mod secrets;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "devsignal",
    version,
    about = "DevSignal: the developer-signal CRM server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP on PORT (the default command). Also runs the job
    /// worker, the cron scheduler and webhook delivery unless `--no-worker` is given.
    Serve {
        /// Serve HTTP only; leave jobs to `devsignal worker` processes.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run jobs, the cron scheduler, webhook delivery and the signal intake without serving HTTP,
    /// with a health endpoint on WORKER_HEALTH_PORT.
    Worker,
    /// Operate the job queues.
    Jobs {
        #[command(subcommand)]
        action: self::jobs::JobsAction,
    },
    /// Inspect or change the database schema version.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Write a consistent backup of the whole database to FILE (a portable, compressed archive)
    /// while the server keeps running; with `--verify`, check an archive instead.
    Backup {
        /// Read the whole archive at FILE and check it (checksum, header, every row, counts)
        /// instead of writing one; exits non-zero on any problem.
        #[arg(long)]
        verify: bool,
        /// The archive to write (replaced if it exists; written as FILE.partial until complete),
        /// or to check.
        file: std::path::PathBuf,
    },
    /// Restore a backup archive into the configured database (DATABASE_URL / DATA_DIR), which
    /// must be empty; either backend, whichever the archive came from.
    Restore {
        /// The archive written by `devsignal backup`.
        file: std::path::PathBuf,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` must equal it.
    Schema,
    /// Check the secrets sealed at rest, and re-seal them after an `ENCRYPTION_KEY` rotation.
    Secrets {
        #[command(subcommand)]
        action: self::secrets::SecretsAction,
    },
    /// Check the configuration, database, migrations, Redis, SMTP, the scheduler, the queues and
    /// the integrations: one OK/WARN/FAIL line each with what to do. Exits 1 when a check fails.
    /// Needs no running server.
    Doctor,
    /// An organization's plan, subscription and use; put it on a plan or set a limit for it
    /// alone.
    Billing {
        #[command(subcommand)]
        action: self::billing::BillingAction,
    },
    /// Manage API keys from the command line.
    #[command(name = "api-keys")]
    ApiKeys {
        #[command(subcommand)]
        action: ApiKeysAction,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum ApiKeysAction {
    /// Create a key for an organization and print it (shown only this once). The key has no
    /// creating user, so only its scopes bound it; revoke it with `api-keys revoke <prefix>`.
    Create {
        /// The organization: its id, or its exact name when no other organization has it.
        #[arg(long)]
        org: String,
        /// A name to recognise the key by (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. `signals:write,accounts:read` (the table is in
        /// ARCHITECTURE.md, "API-key scopes").
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// Revoke the live key with this prefix (as shown in the dashboard, e.g. `dsk_AbCd1234`).
    Revoke {
        /// The key's prefix (`dsk_` + 8 characters).
        prefix: String,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum MigrateAction {
    /// Apply every pending migration (harmless when there is none).
    Up,
    /// List every migration and whether it is applied.
    Status,
    /// Roll back the last N applied migrations.
    Down {
        /// How many migrations to roll back.
        n: u32,
    },
}

/// Exit code for an unusable configuration (sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve { no_worker: false });
    if let Command::Schema = command {
        println!("{}", crate::graphql::sdl().trim_end());
        return ExitCode::SUCCESS;
    }
    if let Command::Doctor = command {
        return self::doctor::run().await;
    }
    // Checking an archive needs neither configuration nor database.
    if let Command::Backup { verify: true, file } = &command {
        return match self::backup::verify(file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(errors) => {
            for problem in &errors.0 {
                eprintln!("configuration error: {problem}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Only the serving roles sign tokens; operator commands never write secrets.
    if matches!(command, Command::Serve { .. } | Command::Worker)
        && let Err(e) = config.resolve_dev_secrets()
    {
        eprintln!(
            "configuration error: DATA_DIR: cannot keep development secrets in {}: {e}",
            config.data_dir.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let _telemetry = crate::telemetry::init(&config);
    let serving = matches!(command, Command::Serve { .. } | Command::Worker);
    let result = match command {
        Command::Serve { no_worker } => {
            config.run_worker = !no_worker;
            serve(config).await
        }
        Command::Worker => worker(config).await,
        Command::Jobs { action } => self::jobs::run(config, action).await,
        Command::Migrate { action } => migrate(config, action).await,
        Command::ApiKeys { action } => api_keys(config, action).await,
        Command::Secrets { action } => self::secrets::run(config, action).await,
        Command::Billing { action } => self::billing::run(config, action).await,
        Command::Backup { file, .. } => self::backup::backup(&config, &file).await,
        Command::Restore { file } => self::backup::restore(&config, &file).await,
        Command::Schema | Command::Doctor => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed once: the serving roles into their log (where operators and pipelines
            // look), operator commands to stderr (and to Sentry only, when configured).
            if serving {
                tracing::error!(error = format!("{e:#}"), "devsignal failed");
            } else {
                eprintln!("error: {e:#}");
                tracing::error!(target: crate::telemetry::REPORT_ONLY, error = format!("{e:#}"), "devsignal failed");
            }
            ExitCode::FAILURE
        }
    }
}

/// Opens the database an operator command works on. It must already exist and hold DevSignal's
/// tables: run from the wrong directory, the default `./data` would otherwise become a new,
/// empty database and the command would fail on a missing table.
pub(crate) async fn open_existing_database(
    config: &Config,
) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = config.database_url.expose_secret();
    let described = config.database_description();
    let no_tables = || {
        anyhow::anyhow!(
            "the database {described} holds no DevSignal tables: set DATA_DIR or DATABASE_URL \
             to the server's database, or run `devsignal migrate up` to set this one up"
        )
    };
    if let Some(file) = domain::db::sqlite_file(url) {
        match std::fs::metadata(&file) {
            Ok(m) if m.is_file() && m.len() == 0 => return Err(no_tables()),
            Ok(m) if m.is_file() => {}
            _ => {
                let shown = std::path::absolute(&file).unwrap_or(file);
                anyhow::bail!(
                    "no DevSignal database at {}: run this command where the server keeps its \
                     data, or set DATA_DIR (the directory) or DATABASE_URL to the server's \
                     database (`devsignal serve` or `devsignal migrate up` creates a new one)",
                    shown.display()
                );
            }
        }
    }
    let db = domain::db::connect(url, &Default::default())
        .await
        .with_context(|| format!("cannot open the database {described}"))?;
    let applied = domain::db::applied_migrations(&db)
        .await
        .with_context(|| format!("cannot read the schema version of {described}"))?;
    if applied == 0 {
        db.close().await.ok();
        return Err(no_tables());
    }
    Ok(db)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let addr = format!("{}:{}", config.host, config.port);
    let state = crate::build_state(config, shutdown.clone()).await?;
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    shutdown_on_signal(shutdown);
    tracing::info!(address = %local, "DevSignal listening on http://{local} (GraphiQL at /graphiql)");
    crate::serve(state, listener).await
}

async fn worker(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let port = config.worker_health_port;
    let addr = format!("{}:{port}", config.host);
    let state = crate::build_state(config, shutdown.clone()).await?;
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (WORKER_HEALTH_PORT)"))?;
    let local = listener.local_addr()?;
    shutdown_on_signal(shutdown.clone());
    tracing::info!(address = %local, "DevSignal worker running; health on http://{local}/health");
    let health = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(crate::http::health::worker_health),
        )
        .route(
            "/health/ready",
            axum::routing::get(crate::http::health::ready),
        )
        .route("/metrics", axum::routing::get(crate::http::metrics))
        .with_state(state.clone());
    let server = tokio::spawn(
        axum::serve(listener, health)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );
    let background = crate::start_worker(&state).await?;
    if background.await.is_err() {
        tracing::error!("the worker role panicked");
    }
    let _ = server.await;
    state
        .db
        .close()
        .await
        .context("closing the database pool")?;
    tracing::info!("worker shut down cleanly");
    Ok(())
}

/// Cancels `token` on SIGTERM or Ctrl-C (SIGINT). The handlers are in place when this returns,
/// so a signal sent once the process says it is listening always shuts it down gracefully: a
/// handler installed later, by a task not yet run, left such a signal its default action (the
/// process killed on the spot, in-flight work cut off).
pub fn shutdown_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let wait = |kind: SignalKind| {
            let installed = signal(kind);
            async move {
                match installed {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for a shutdown signal");
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let (term, int) = (wait(SignalKind::terminate()), wait(SignalKind::interrupt()));
        tokio::spawn(async move {
            tokio::select! {
                () = term => {},
                () = int => {},
            }
            tracing::info!("shutdown signal received; finishing in-flight work");
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received; finishing in-flight work");
            token.cancel();
        });
    }
}

async fn api_keys(config: Config, action: ApiKeysAction) -> anyhow::Result<()> {
    let db = open_existing_database(&config).await?;
    let result = match action {
        ApiKeysAction::Create { org, name, scopes } => {
            let input = domain::identity::api_keys::CreateInput {
                name,
                scopes: scopes.into_iter().map(|s| s.trim().to_owned()).collect(),
                expires_at: None,
            };
            let created = domain::identity::api_keys::create_for_operator(&db, &org, input).await;
            db.close().await?;
            return match created {
                Ok((org, key, secret)) => {
                    // The key alone on stdout (`KEY=$(devsignal api-keys create …)`), the rest
                    // on stderr.
                    println!("{secret}");
                    eprintln!(
                        "created API key {} ({:?}) for organization {} ({}) with scopes {}; \
                         it is shown only this once",
                        key.prefix,
                        key.name,
                        org.name,
                        org.id,
                        domain::identity::api_keys::scopes_of(&key).join(", ")
                    );
                    Ok(())
                }
                Err(domain::Error::NotFound { .. }) => {
                    anyhow::bail!("no organization has the id or name {:?}", org.trim())
                }
                Err(e) => Err(cli_error(e)),
            };
        }
        ApiKeysAction::Revoke { prefix } => {
            domain::identity::api_keys::revoke_by_prefix(&db, prefix.trim()).await
        }
    };
    db.close().await?;
    match result {
        Ok(key) => {
            println!(
                "revoked API key {} ({:?}) of organization {}",
                key.prefix, key.name, key.organization_id
            );
            Ok(())
        }
        Err(domain::Error::NotFound { .. }) => {
            anyhow::bail!("no live API key has this prefix")
        }
        Err(e) => Err(cli_error(e)),
    }
}

/// A domain error as the command line shows it: each field's problem (`--scopes: unknown scope
/// "x"; known: …`), or the whole error (the operator is on the server: nothing to hide).
fn cli_error(e: domain::Error) -> anyhow::Error {
    match e {
        domain::Error::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|f| format!("--{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        e => anyhow::anyhow!(e),
    }
}

async fn migrate(config: Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = domain::db::connect(config.database_url.expose_secret(), &Default::default())
        .await
        .with_context(|| format!("cannot open the database {}", config.database_description()))?;
    match action {
        MigrateAction::Up => {
            let n = domain::db::migrate_up(&db).await?;
            println!("applied {n} migration(s)");
        }
        MigrateAction::Down { n } => {
            let done = domain::db::migrate_down(&db, n).await?;
            println!("rolled back {done} migration(s)");
        }
        MigrateAction::Status => {
            let list = domain::db::migration_status(&db).await?;
            for m in &list {
                println!(
                    "{:<8} {}",
                    if m.applied { "applied" } else { "pending" },
                    m.name
                );
            }
            let pending = list.iter().filter(|m| !m.applied).count();
            println!("{} applied, {pending} pending", list.len() - pending);
        }
    }
    db.close().await?;
    Ok(())
}
