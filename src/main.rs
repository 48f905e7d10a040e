//! The `herald` command: parse arguments, load config, call the library.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use herald::app::{create_token, App, TokenRequest};
use herald::config::Config;
use herald::domain::content::Role;
use herald::store;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the delivery path allocates many small short-lived
/// buffers across threads, where glibc's malloc spent close to a fifth of herald's CPU time
/// (measured with `perf` under examples/bench.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Self-hosted delivery of signed webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API, the delivery workers and health endpoints (applies migrations).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Forward deliveries to a local URL, without a public URL or a tunnel.
    Listen {
        /// Where to POST each delivery, e.g. http://localhost:3000/hook.
        #[arg(long)]
        forward_to: url::Url,
        /// herald's base URL.
        #[arg(long, env = "HERALD_SERVER", default_value = "http://127.0.0.1:8080")]
        server: url::Url,
        /// An admin's API token.
        #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
        token: String,
        /// Comma-separated event subscriptions (VIDEO, COLLECTION); default all.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create the channel and user when missing, then a new API token; prints the token alone.
    Create {
        /// The channel's subdomain.
        #[arg(long)]
        channel: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// The channel's name, when it is created (default: the subdomain).
        #[arg(long)]
        channel_name: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Member,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = cli.config;
    if let Command::Listen {
        forward_to,
        server,
        token,
        events,
    } = cli.command
    {
        let events = events
            .iter()
            .map(|e| e.trim().to_ascii_uppercase())
            .filter(|e| !e.is_empty())
            .collect();
        let opts = herald::listen::ListenOptions {
            server,
            token,
            forward_to,
            events,
        };
        herald::listen::run(opts, shutdown_signal()).await?;
        return Ok(());
    }
    config.validate()?;
    match cli.command {
        Command::Listen { .. } => {}
        Command::Migrate => {
            let store = store::connect(&config.database_url, &config.channel_url).await?;
            store.close().await;
            tracing::info!(database = %config.redacted_database_url(), "migrations applied");
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    channel,
                    email,
                    role,
                    first_name,
                    last_name,
                    channel_name,
                },
        } => {
            let channel = channel.trim().to_ascii_lowercase();
            let valid = !channel.is_empty()
                && channel.len() <= 63
                && channel
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid {
                return Err(
                    "--channel must be a subdomain: letters, digits and '-', at most 63".into(),
                );
            }
            if !email.contains('@') || email.len() > 254 {
                return Err("--email must be an email address".into());
            }
            let store = store::connect(&config.database_url, &config.channel_url).await?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
            };
            let req = TokenRequest {
                channel,
                channel_name,
                email,
                first_name,
                last_name,
                role,
            };
            let token = create_token(&store, &req).await;
            store.close().await;
            println!("{}", token?);
        }
        Command::Serve => {
            let listen = config.listen;
            let app = App::build(config).await?;
            if let Some(token) = app.bootstrap().await? {
                eprintln!(
                    "\nherald: the database was empty, so it now has a channel `default` and an admin.\n\
                     The admin's API token (shown only this once):\n\n    {token}\n\n\
                     Open http://{listen}/api/graphql and send it as the header\n\
                     Authorization: Bearer {token}\n\
                     More tokens: herald token create --channel default --email you@example.com\n"
                );
            }
            let listener = tokio::net::TcpListener::bind(listen).await?;
            tracing::info!(address = %listener.local_addr()?, "herald is listening");
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("herald stopped");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
