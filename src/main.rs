//! The `herald` binary: parse the command line, load the configuration, run the server.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald::config::{self, Config, LogFormat};
use herald::server::Stopped;

/// A self-hosted Pusher Channels server.
#[derive(Parser)]
#[command(name = "herald", version, about)]
struct Cli {
    /// TOML configuration file (defaults to the built-in development setup).
    #[arg(long, short, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Start from an existing laravel-echo-server.json instead (see `convert-echo-config`).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    laravel_echo_server: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Validate a configuration file (and the HERALD_ environment) and print every problem.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// The PostgreSQL app store's schema (`app_store.database_url` from the config/environment).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Apps in the PostgreSQL app store (`app_store.database_url`): the admin API's operations,
    /// printing JSON. Changes reach every running node at once.
    Apps {
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// Print the herald.toml equivalent of a laravel-echo-server.json (what is not taken over
    /// is listed as comments and on stderr).
    ConvertEchoConfig {
        /// The laravel-echo-server.json to convert.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply the migrations the database lacks (Herald also does at startup unless
    /// `app_store.migrate = false`).
    Migrate,
}

#[derive(Subcommand)]
enum AppsCommand {
    /// Every app (without secrets).
    List,
    /// One app (without its secret).
    Show { id: String },
    /// A new app; `key` and `secret` are generated unless given in --json. Prints its secret.
    Create {
        id: String,
        /// Other fields, as a JSON object of [[apps]] keys (e.g. '{"client_events": true}').
        #[arg(long, default_value = "{}")]
        json: String,
    },
    /// Change fields of an app.
    Update {
        id: String,
        /// The fields, as a JSON object of [[apps]] keys.
        #[arg(long)]
        json: String,
    },
    /// Refuse the app's connections and REST calls (open sockets close with 4003).
    Disable { id: String },
    /// Serve the app again.
    Enable { id: String },
    /// A new random secret (the old one is refused from now on). Prints it.
    RotateSecret { id: String },
    /// Delete the app.
    Delete { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig { file } => check_config(&file),
        Command::Db { command: DbCommand::Migrate } => db_migrate(cli.config.as_deref()),
        Command::Apps { command } => apps(cli.config.as_deref(), command),
        Command::ConvertEchoConfig { file } => match read_echo_config(&file) {
            Ok(converted) => {
                print!("{}", converted.toml);
                for line in converted.blocking.iter().chain(&converted.notes) {
                    eprintln!("not converted: {line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => match &cli.laravel_echo_server {
            Some(file) => serve_echo_config(file),
            None => serve(cli.config.as_deref()),
        },
    }
}

fn db_migrate(file: Option<&std::path::Path>) -> ExitCode {
    let cfg = match config::load(file, env_vars()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("invalid configuration:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let url = cfg.app_store.database_url.clone();
    if url.is_empty() {
        eprintln!("app_store.database_url is not set (or HERALD_APP_STORE__DATABASE_URL)");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let migrated = runtime.block_on(async {
        let (mut client, connection) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        herald::apps::postgres::schema::migrate(&mut client).await.map_err(|e| e.to_string())
    });
    match migrated {
        Ok(ran) => {
            println!("{ran} migration(s) applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migration failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `herald apps …`: the same code as the admin API, against the configured database.
fn apps(file: Option<&std::path::Path>, command: AppsCommand) -> ExitCode {
    use herald::apps::postgres::admin;
    let cfg = match config::load(file, env_vars()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("invalid configuration:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    let s = &cfg.app_store;
    let timeout = std::time::Duration::from_millis(s.timeout_ms);
    let pool = match herald::apps::postgres::pool(&s.database_url, 1, timeout) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let object = |text: &str| match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(admin::AdminError::Invalid(vec!["--json must be a JSON object".into()])),
    };
    let one = |id: &str, field: &str, value: serde_json::Value| {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), id.into());
        m.insert(field.into(), value);
        m
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let done = runtime.block_on(async {
        Ok::<_, admin::AdminError>(match command {
            AppsCommand::List => {
                let apps = admin::list(&pool).await?;
                serde_json::json!({ "apps": apps.iter().map(|a| admin::to_json(a, false)).collect::<Vec<_>>() })
            }
            AppsCommand::Show { id } => admin::to_json(&admin::get(&pool, &id).await?, false),
            AppsCommand::Create { id, json } => {
                let mut fields = object(&json)?;
                fields.insert("id".into(), id.into());
                admin::to_json(&admin::create(&pool, &fields).await?, true)
            }
            AppsCommand::Update { id, json } => {
                admin::to_json(&admin::update(&pool, &id, &object(&json)?).await?, false)
            }
            AppsCommand::Disable { id } => {
                admin::to_json(&admin::update(&pool, &id, &one(&id, "enabled", false.into())).await?, false)
            }
            AppsCommand::Enable { id } => {
                admin::to_json(&admin::update(&pool, &id, &one(&id, "enabled", true.into())).await?, false)
            }
            AppsCommand::RotateSecret { id } => admin::to_json(&admin::rotate_secret(&pool, &id).await?, true),
            AppsCommand::Delete { id } => {
                admin::delete(&pool, &id).await?;
                serde_json::json!({ "deleted": id })
            }
        })
    });
    match done {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON encodes"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn read_echo_config(file: &std::path::Path) -> Result<config::Converted, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    config::convert_echo_server(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// `herald --laravel-echo-server FILE`: the converted file, loaded as a config file would be.
fn serve_echo_config(file: &std::path::Path) -> ExitCode {
    let converted = match read_echo_config(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if !converted.blocking.is_empty() {
        for line in &converted.blocking {
            eprintln!("{}: cannot serve {line}", file.display());
        }
        return ExitCode::FAILURE;
    }
    for line in &converted.notes {
        eprintln!("{}: not taken over: {line}", file.display());
    }
    match config::load_str(&converted.toml, env_vars()) {
        Ok(cfg) => run(cfg),
        Err(e) => {
            eprintln!("{}: the converted configuration is invalid:\n{e}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match config::load(Some(file), env_vars()) {
        Ok(cfg) => {
            println!("{}: OK ({} app(s))", file.display(), cfg.apps.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: invalid configuration", file.display());
            for line in e.to_string().lines() {
                eprintln!("  {line}");
            }
            ExitCode::FAILURE
        }
    }
}

fn serve(file: Option<&std::path::Path>) -> ExitCode {
    match config::load(file, env_vars()) {
        Ok(cfg) => run(cfg),
        Err(e) => {
            eprintln!("invalid configuration:\n{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> ExitCode {
    init_tracing(&cfg);
    warn_development(&cfg);
    raise_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        // Installed before anything is served, so no signal is missed.
        let signals = herald::shutdown::signals()?;
        herald::server::run(cfg, signals).await
    });
    match served {
        Ok(Stopped::Drained) => ExitCode::SUCCESS,
        // Tasks may still be running (a drain, webhook requests): do not wait for them.
        Ok(Stopped::Interrupted) => std::process::exit(EXIT_INTERRUPTED),
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// Exit status after a second SIGTERM/SIGINT cut the drain short.
const EXIT_INTERRUPTED: i32 = 130;

/// Logs go to stderr, coloured only when it is a terminal (and `NO_COLOR` is unset), so files
/// and log collectors never get ANSI escape codes.
fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&cfg.log.level);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match cfg.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Every socket is a file descriptor: lift the soft limit (often 1024) to the hard limit.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
}

fn warn_development(cfg: &Config) {
    if cfg.app_store.driver != config::AppStoreDriver::Static {
        return;
    }
    for app in cfg.apps.iter().filter(|a| a.is_development()) {
        tracing::warn!(
            app_id = %app.id,
            app_key = %app.key,
            "serving the DEVELOPMENT app with public credentials (app-id / app-key / app-secret); \
             define your own [[apps]] in a config file or HERALD_APPS__0__* before going to production"
        );
    }
}

/// The process environment, skipping variables that are not valid Unicode.
fn env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}
