//! `herald-bench`: a load generator for any Pusher Channels server (Herald, soketi, …).
//! It only speaks the public protocol (WebSocket clients plus the signed REST API) and must
//! not depend on Herald's internals beyond the pure signing helpers.
//!
//! Every scenario is bounded by counts and `--duration`. Progress goes to stderr; a table and
//! one JSON line (always the last line of stdout) go to stdout. See `benches/README.md`.

mod churn;
mod client_events;
mod compare;
mod connect;
mod fanout;
mod flood;
mod html;
mod http;
mod net;
mod pace;
mod presence;
mod report;
mod rest;
mod series;
mod stats;
mod svg;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Setup failures end the run; a tool may box them (measured failures are counted instead).
type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

#[derive(Parser, Debug)]
#[command(name = "herald-bench", version, about = "Load generator for Pusher Channels servers (Herald, soketi, …)")]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Where the server is, which app to use, and the knobs every scenario shares.
#[derive(Args, Clone, Debug)]
struct TargetArgs {
    /// Server host name or IPv4 address.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Server port (WebSocket and REST API).
    #[arg(long, global = true, default_value_t = 6001)]
    port: u16,
    /// Several nodes of one cluster on this host, e.g. `6001,6002,6003` (overrides `--port`):
    /// the `n`th connection, WebSocket or REST, goes to node `n mod N`.
    #[arg(long, global = true, value_delimiter = ',')]
    ports: Vec<u16>,
    /// App id (REST paths).
    #[arg(long, global = true, default_value = "app-id")]
    app_id: String,
    /// App key (WebSocket path, signatures).
    #[arg(long, global = true, default_value = "app-key")]
    key: String,
    /// App secret: REST requests and channel auth are signed locally with it.
    #[arg(long, global = true, default_value = "app-secret")]
    secret: String,
    /// Mount prefix of the server's paths (e.g. `/herald`).
    #[arg(long, global = true, default_value = "")]
    path_prefix: String,
    /// Server process id: adds its CPU time (utime+stime) and RSS from /proc to the results.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Seconds of the measured phase (publishing, holding, sending).
    #[arg(long, global = true, default_value_t = 10.0)]
    duration: f64,
    /// Spread connections over source addresses 127.0.0.1..=127.0.0.N (0: as the count needs).
    #[arg(long, global = true, default_value_t = 0)]
    source_ips: u8,
    /// The first source address is 127.0.0.<this> (several generator processes on one host
    /// each take their own addresses, so their explicit source ports never clash).
    #[arg(long, global = true, default_value_t = 1)]
    first_source_ip: u8,
    /// Connections being set up at once.
    #[arg(long, global = true, default_value_t = 100)]
    connect_concurrency: usize,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, global = true, default_value_t = 1.0)]
    progress: f64,
    /// Generator runtime threads (0: one per CPU).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Also write this run's report as an HTML page with its charts (see `report`).
    #[arg(long, global = true)]
    report_html: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Subscribers over channels receive events published over REST; deliveries/s, loss, latency.
    Fanout(fanout::FanoutArgs),
    /// Connections opened as fast as possible, then held idle; connects/s, RSS per connection.
    Connect(connect::ConnectArgs),
    /// Members join and leave one presence channel; join latency, member events delivered.
    Presence(presence::PresenceArgs),
    /// Pairs of sockets exchange client events on private channels; msgs/s and latency.
    ClientEvents(client_events::ClientEventsArgs),
    /// REST triggers alone from keep-alive clients; triggers/s and latency.
    Http(http::HttpArgs),
    /// Flooders write as fast as the server reads; bystanders' ping round trips must stay fast.
    Flood(flood::FloodArgs),
    /// Soak: users connect, subscribe, join presence, leave, over and over; RSS and gauges must
    /// return to baseline.
    Churn(churn::ChurnArgs),
    /// Not a scenario: one HTML page (tables and charts, all servers side by side) from the
    /// JSON lines of earlier runs.
    Report(html::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Report(a) = &cli.scenario {
        return match html::run(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald-bench report: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let nofile = net::raise_nofile();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cli.target.threads > 0 {
        builder.worker_threads(cli.target.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herald-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    stats::now_us();
    let t = &cli.target;
    let result = runtime.block_on(async {
        match &cli.scenario {
            Scenario::Fanout(a) => fanout::run(t, a).await,
            Scenario::Connect(a) => connect::run(t, a).await,
            Scenario::Presence(a) => presence::run(t, a).await,
            Scenario::ClientEvents(a) => client_events::run(t, a).await,
            Scenario::Http(a) => http::run(t, a).await,
            Scenario::Flood(a) => flood::run(t, a).await,
            Scenario::Churn(a) => churn::run(t, a).await,
            Scenario::Report(_) => unreachable!("rendered above, without a runtime"),
        }
    });
    // Do not wait for thousands of client tasks to notice: the report is what matters.
    runtime.shutdown_background();
    match result {
        Ok(mut report) => {
            report.param("nofile_limit", nofile);
            report.param("duration_s", t.duration);
            report.detail("machine", stats::machine());
            println!("{}", report.table());
            let line = report.json();
            println!("{line}");
            if let Some(path) = &t.report_html {
                match html::write_single(&line, path) {
                    Ok(()) => eprintln!("herald-bench: report written to {}", path.display()),
                    Err(e) => {
                        eprintln!("herald-bench: cannot write {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
            }
            // A failed check still prints everything measured: an hour of soak is not thrown away.
            match report.failure() {
                Some(why) => {
                    eprintln!("herald-bench: {why}");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("herald-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
