//! The `herald` command: parse arguments, load config, call the library.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand, ValueEnum};
use herald::app::{
    self, connect_store, error_chain, issue_token, App, ExistingRole, Patience, TokenRequest,
};
use herald::config::{
    self, Config, DatabaseArgs, SecretKeyArgs, DEFAULT_CHANNEL_URL, DEFAULT_DATABASE_URL,
};
use herald::domain::content::Role;
use herald::domain::time::now_ms;
use herald::secrets::{self, KeySource, Rotated};
use herald::store::{SharedStore, StoreError, TokenInfo};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the delivery path allocates many small short-lived
/// buffers across threads, where glibc's malloc spent close to a fifth of herald's CPU time
/// (measured with `perf` under examples/bench.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a one-off command (`migrate`, `token …`, `user …`) keeps trying a database server
/// that cannot be reached before it gives up; `serve` waits for it.
const COMMAND_PATIENCE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Self-hosted delivery of signed webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  herald serve
  DATABASE_URL=postgres://herald:secret@localhost/herald HERALD_LISTEN=0.0.0.0:8080 herald serve
  HERALD_DEV=true herald serve        # local development: http:// and loopback receivers allowed";

const TOKEN_CREATE_EXAMPLES: &str = "\
Examples:
  herald token create --channel acme --email ops@acme.example
  herald token create --channel acme --email dev@acme.example --role member --first-name Dev
  DATABASE_URL=postgres://herald@db/herald herald token create --channel acme --email ops@acme.example";

const LISTEN_EXAMPLES: &str = "\
Example (with an admin's token; events go to a server on port 3000):
  herald listen --token \"$HERALD_TOKEN\" --forward-to http://localhost:3000/hook --events VIDEO";

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API, the delivery workers and health endpoints (applies migrations).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Forward deliveries to a local URL, without a public URL or a tunnel.
    #[command(after_help = LISTEN_EXAMPLES)]
    Listen {
        /// Where to POST each delivery: an absolute http:// or https:// URL, e.g.
        /// http://localhost:3000/hook.
        #[arg(long, value_name = "URL", value_parser = herald::listen::parse_forward_to)]
        forward_to: url::Url,
        /// herald's base URL.
        #[arg(
            long,
            value_name = "URL",
            env = "HERALD_SERVER",
            default_value = "http://127.0.0.1:8080"
        )]
        server: url::Url,
        /// An admin's API token.
        #[arg(long, env = "HERALD_TOKEN", hide_env_values = true)]
        token: String,
        /// Comma-separated event subscriptions (VIDEO, COLLECTION, MEMBER, GROUP, COMMENT,
        /// HIGHLIGHT, SOURCE, WEBHOOK); default all.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// Create, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the key webhook secrets are sealed with at rest.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

const ROTATE_KEY_EXAMPLES: &str = "\
Examples:
  herald secrets rotate-key        # SQLite: the new key goes to herald.db.secret-key.new
  DATABASE_URL=postgres://herald@db/herald HERALD_SECRET_KEY_FILE=/etc/herald/secret-key \\
    herald secrets rotate-key --new-key-file /etc/herald/secret-key.next";

#[derive(Subcommand)]
enum SecretsCommand {
    /// Seal every webhook's secrets under a new key (the database records it as current), a
    /// batch of webhooks per transaction; prints where the new key is and what to do next.
    /// Takes the settings `serve` takes for the current key.
    #[command(after_help = ROTATE_KEY_EXAMPLES)]
    RotateKey {
        /// Where the new key is written (mode 0600). A file that exists already is read
        /// instead: its key becomes the new key (to finish a rotation cut short, or to use a
        /// key given to every process beforehand) [default: the key file's path with `.new`].
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        keys: SecretKeyArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create the channel and user when missing, then a new API token; prints the token alone.
    #[command(after_help = TOKEN_CREATE_EXAMPLES)]
    Create {
        /// The channel's subdomain (created when missing).
        #[arg(long, value_name = "SUBDOMAIN", value_parser = subdomain)]
        channel: String,
        /// The user's email (the user is created when missing).
        #[arg(long, value_parser = email)]
        email: String,
        /// The user's role; changes an existing user's role [default: admin for a new user;
        /// an existing user keeps theirs].
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// The user's first name, when the user is created.
        #[arg(long, default_value = "")]
        first_name: String,
        /// The user's last name, when the user is created.
        #[arg(long, default_value = "")]
        last_name: String,
        /// The channel's name, when it is created (default: the subdomain).
        #[arg(long)]
        channel_name: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List API tokens as a table: ID, channel, user, role, created, last used, revoked.
    List {
        /// Only this channel's tokens (its subdomain).
        #[arg(long, value_name = "SUBDOMAIN", value_parser = subdomain)]
        channel: Option<String>,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke an API token: the API refuses it from now on.
    Revoke {
        /// The token's ID, as `herald token list` shows it.
        id: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Make a channel's user an admin or a member.
    SetRole {
        /// The channel's subdomain.
        #[arg(long, value_name = "SUBDOMAIN", value_parser = subdomain)]
        channel: String,
        /// The user's email.
        #[arg(long, value_parser = email)]
        email: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    /// May manage webhooks and change content.
    Admin,
    /// May change content.
    Member,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Member => Role::Member,
        }
    }
}

/// A channel's subdomain: letters, digits and '-', stored in lowercase.
fn subdomain(value: &str) -> Result<String, String> {
    let value = value.trim().to_ascii_lowercase();
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        Ok(value)
    } else {
        Err("must be a subdomain: letters, digits and '-', at most 63".into())
    }
}

fn email(value: &str) -> Result<String, String> {
    if value.contains('@') && value.len() <= 254 {
        Ok(value.to_owned())
    } else {
        Err("must be an email address".into())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(config::log_colours(std::io::stderr().is_terminal()))
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { config } => serve(*config).await,
        Command::Migrate { db } => {
            let store = connect(&db).await?;
            store.close().await;
            tracing::info!(database = %config::redacted(&db.database_url), "migrations applied");
            Ok(())
        }
        Command::Listen {
            forward_to,
            server,
            token,
            events,
        } => {
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
            Ok(())
        }
        Command::Token { command } => token(command).await,
        Command::Secrets {
            command:
                SecretsCommand::RotateKey {
                    new_key_file,
                    db,
                    keys,
                },
        } => {
            keys.validate()?;
            let store = connect(&db).await?;
            let rotated =
                secrets::rotate(&store, &keys, &db.database_url, new_key_file.as_deref()).await;
            store.close().await;
            print!("{}", rotation_report(&rotated?));
            Ok(())
        }
        Command::User {
            command:
                UserCommand::SetRole {
                    channel,
                    email,
                    role,
                    db,
                },
        } => {
            let store = connect(&db).await?;
            let was = store.set_user_role(&channel, &email, role.into()).await;
            store.close().await;
            let was =
                was.map_err(|e| not_found(e, format!("no user {email} in channel {channel}")))?;
            eprintln!(
                "herald: {}",
                role_change(&email, &channel, was, role.into())
            );
            Ok(())
        }
    }
}

/// A one-off command's store: it gives up on an unreachable database after
/// [`COMMAND_PATIENCE`].
async fn connect(db: &DatabaseArgs) -> Result<SharedStore, Failure> {
    db.validate()?;
    let patience = Patience::For(COMMAND_PATIENCE);
    Ok(connect_store(&db.database_url, DEFAULT_CHANNEL_URL, patience).await?)
}

/// `NotFound` as `message`; other errors as they are.
fn not_found(e: StoreError, message: String) -> Failure {
    match e {
        StoreError::NotFound => message.into(),
        e => e.into(),
    }
}

fn role_change(email: &str, channel: &str, was: Role, now: Role) -> String {
    if was == now {
        format!("user {email} is already {} of channel {channel}", a(now))
    } else {
        format!(
            "user {email} was {} of channel {channel}; now {}",
            a(was),
            a(now)
        )
    }
}

fn a(role: Role) -> &'static str {
    match role {
        Role::Admin => "an admin",
        Role::Member => "a member",
    }
}

async fn token(command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create {
            channel,
            email,
            role,
            first_name,
            last_name,
            channel_name,
            db,
        } => {
            let store = connect(&db).await?;
            let req = TokenRequest {
                channel,
                channel_name,
                email,
                first_name,
                last_name,
                role: role.map_or(Role::Admin, Role::from),
            };
            let existing = match role {
                Some(_) => ExistingRole::Set,
                None => ExistingRole::Keep,
            };
            let issued = issue_token(&store, &req, existing).await;
            store.close().await;
            let issued = issued?;
            if let Some(was) = issued.previous_role {
                let change = role_change(&req.email, &req.channel, was, issued.role);
                eprintln!("herald: {change}");
            }
            println!("{}", issued.token);
        }
        TokenCommand::List { channel, db } => {
            let store = connect(&db).await?;
            let tokens = store.list_tokens(channel.as_deref()).await;
            store.close().await;
            print!("{}", token_table(&tokens?));
        }
        TokenCommand::Revoke { id, db } => {
            let store = connect(&db).await?;
            let revoked = store.revoke_token(id, now_ms()).await;
            store.close().await;
            let t = revoked.map_err(|e| {
                not_found(
                    e,
                    format!("no token has ID {id} (`herald token list` shows them)"),
                )
            })?;
            let whose = format!("token {id} ({}, channel {})", t.email, t.channel);
            match t.revoked_at {
                Some(at) => eprintln!("herald: {whose} was already revoked on {}", time(at)),
                None => eprintln!("herald: {whose} revoked"),
            }
        }
    }
    Ok(())
}

/// What `secrets rotate-key` did, where the new key is, and what the operator does next.
fn rotation_report(r: &Rotated) -> String {
    let path = std::fs::canonicalize(&r.path).unwrap_or_else(|_| r.path.clone());
    let path = path.display();
    let sealed = r.resealed.plain + r.resealed.other_key;
    let made = if r.generated {
        "written there now"
    } else {
        "read from there"
    };
    let (give, old) = match &r.old_source {
        KeySource::Setting => (
            format!("HERALD_SECRET_KEY=\"$(cat {path})\""),
            "HERALD_SECRET_KEY_PREVIOUS=<the old HERALD_SECRET_KEY>".to_owned(),
        ),
        KeySource::File(old) | KeySource::Generated(old) => (
            format!("HERALD_SECRET_KEY_FILE={path}"),
            format!("HERALD_SECRET_KEY_PREVIOUS=\"$(cat {})\"", old.display()),
        ),
    };
    format!(
        "Webhook secrets are now sealed under key {new} (was {old_id}): {sealed} webhooks sealed again.\n\
         The new key is in {path} (mode 0600; {made}).\n\
         Give it to every herald process, keeping the old key for what they wrote meanwhile, and restart them:\n\
         \x20 {give} {old}\n\
         (or move the new file over the old one, and keep a copy of the old key for HERALD_SECRET_KEY_PREVIOUS).\n\
         Each process seals again at start what is still under the old key. Once all of them run with the new key,\n\
         unset HERALD_SECRET_KEY_PREVIOUS and destroy the old key, and its copies in backups of the key file.\n",
        new = r.new,
        old_id = r.old,
    )
}

/// A time as `herald token list` shows it: UTC, to the minute.
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Tokens as a table with aligned columns, a header first.
fn token_table(tokens: &[TokenInfo]) -> String {
    let header = [
        "ID",
        "CHANNEL",
        "USER",
        "ROLE",
        "CREATED (UTC)",
        "LAST USED (UTC)",
        "REVOKED (UTC)",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for t in tokens {
        rows.push(vec![
            t.id.to_string(),
            t.channel.clone(),
            t.email.clone(),
            t.role.as_str().to_owned(),
            time(t.created_at),
            t.last_used_at.map_or_else(|| "never".to_owned(), time),
            t.revoked_at.map_or_else(|| "-".to_owned(), time),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn serve(config: Config) -> Result<(), Failure> {
    config.validate()?;
    tracing::info!(
        database = %config.redacted_database_url(),
        listen = %config.listen,
        dev = config.dev,
        "herald {} starting",
        env!("CARGO_PKG_VERSION"),
    );
    if config.dev {
        tracing::warn!(
            "dev mode is on (HERALD_DEV): webhooks may use http:// and deliver to loopback and \
             private addresses, so the SSRF guard is off; never turn it on where others can \
             create webhooks"
        );
    }
    // The address is taken first: a mistake there is told at once, not after the database.
    let listener = app::bind(config.listen).await?;
    let address = listener.local_addr()?;
    let more_tokens = token_create_hint(&config.database_url);
    let app = App::build(config).await?;
    if let Some(first) = app.bootstrap().await? {
        let path = std::fs::canonicalize(&first.path).unwrap_or(first.path);
        eprintln!(
            "\nherald: the database was empty, so it now has a channel `default` and an admin.\n\
             The admin's API token is in {} (readable only by this user);\n\
             keep it somewhere safe, then delete the file.\n\
             Send it to http://{address}/api/graphql as the header `Authorization: Bearer <token>`,\n\
             or paste it to sign in to the dashboard at http://{address}/dashboard.\n\
             More tokens: {more_tokens}\n",
            path.display()
        );
        if std::io::stdout().is_terminal() {
            println!(
                "The admin's API token (shown only this once): {}",
                first.token
            );
        }
    }
    tracing::info!(%address, "herald is listening");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("herald stopped");
    Ok(())
}

/// The command that makes more tokens in the database `serve` uses: with its `DATABASE_URL`
/// (less any password, which the operator adds) unless it is the default.
fn token_create_hint(database_url: &str) -> String {
    let command = "herald token create --channel default --email you@example.com";
    if database_url == DEFAULT_DATABASE_URL {
        return command.to_owned();
    }
    let shown = config::without_password(database_url);
    let quoted = shown.replace('\'', r"'\''");
    let password = if shown != database_url {
        " (add the database's password)"
    } else {
        ""
    };
    format!("DATABASE_URL='{quoted}' {command}{password}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every option and argument of every subcommand says what it is for.
    #[test]
    fn every_option_has_a_description() {
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let described = arg.get_help().or(arg.get_long_help()).is_some();
                assert!(described, "{path} {} has no description", arg.get_id());
            }
            for sub in cmd.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "herald");
    }

    #[test]
    fn the_hint_for_more_tokens_names_the_database_without_its_password() {
        assert_eq!(
            token_create_hint(DEFAULT_DATABASE_URL),
            "herald token create --channel default --email you@example.com"
        );
        let hint = token_create_hint("postgres://herald:hunter2@db/herald");
        assert!(
            hint.starts_with("DATABASE_URL='postgres://herald@db/herald' herald token create"),
            "{hint}"
        );
        assert!(!hint.contains("hunter2"), "{hint}");
        let hint = token_create_hint("sqlite:///var/lib/herald/herald.db");
        assert!(
            hint.starts_with("DATABASE_URL='sqlite:///var/lib/herald/herald.db' herald"),
            "{hint}"
        );
    }

    #[test]
    fn a_token_table_lines_up() {
        let table = token_table(&[TokenInfo {
            id: 12,
            channel: "acme".into(),
            email: "ops@acme.test".into(),
            role: Role::Admin,
            created_at: 0,
            last_used_at: None,
            revoked_at: Some(60_000),
        }]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[0].starts_with("ID  CHANNEL  USER"), "{table}");
        assert!(
            lines[1].starts_with("12  acme     ops@acme.test  admin  1970-01-01 00:00  never"),
            "{table}"
        );
        assert!(lines[1].ends_with("1970-01-01 00:01"), "{table}");
    }
}
