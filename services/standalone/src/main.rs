//! The `logpool` binary: `logpool standalone` runs the whole product in one process;
//! `put` and `search` are clients of a running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use logpool_engines::config::Config;
use logpool_standalone::cli::{put, search, PutOptions, SearchOptions};

#[derive(Debug, Parser)]
#[command(
    name = "logpool",
    version,
    about = "A multi-tenant log service: ingest, index, search, tail."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every service in one process on embedded engines.
    Standalone {
        /// Data directory (overrides the config file and LOGPOOL_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTP listen address (overrides the config file and LOGPOOL_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Optional TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Sends a file (or stdin) line by line to a pool.
    Put {
        /// Project name.
        #[arg(long)]
        project: String,
        /// Pool name.
        #[arg(long)]
        pool: String,
        /// Server URL.
        #[arg(long, env = "LOGPOOL_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// PEM file of the CA that issued an https server's certificate (only it is trusted).
        #[arg(long, env = "LOGPOOL_CA_CERT")]
        ca_cert: Option<PathBuf>,
        /// API key, sent as `Authorization: Bearer <key>`.
        #[arg(long, env = "LOGPOOL_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Records per request.
        #[arg(long, default_value_t = 5000)]
        batch_records: usize,
        /// Attempts per request on 429/503.
        #[arg(long, default_value_t = 10)]
        max_attempts: u32,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Return only once every record sent is searchable (read-your-writes).
        #[arg(long)]
        wait: bool,
        /// How long `--wait` waits at most, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout_secs: u64,
        /// File to send; stdin when missing.
        file: Option<PathBuf>,
    },
    /// Measures ingest, lag, queries and footprint against a bare tantivy baseline.
    Bench(logpool_bench::BenchArgs),
    /// Searches a pool and prints the newest matching records.
    Search {
        /// Project name.
        #[arg(long)]
        project: String,
        /// Pool name.
        #[arg(long)]
        pool: String,
        /// Server URL.
        #[arg(long, env = "LOGPOOL_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// PEM file of the CA that issued an https server's certificate (only it is trusted).
        #[arg(long, env = "LOGPOOL_CA_CERT")]
        ca_cert: Option<PathBuf>,
        /// API key, sent as `Authorization: Bearer <key>`.
        #[arg(long, env = "LOGPOOL_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Start (RFC 3339, epoch ms, `-15m`, `now`); `--from -1h` reads `-1h` as the value.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End, in the same forms as `--from`.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Hits to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print hits as JSON lines.
        #[arg(long)]
        json: bool,
        /// Query, e.g. `error AND status:500`.
        #[arg(default_value = "")]
        query: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOGPOOL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Standalone {
            data_dir,
            listen,
            config,
        } => {
            let env: HashMap<String, String> = std::env::vars().collect();
            let mut config = Config::load(config.as_deref(), &env)?;
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            run_standalone(config).await
        }
        Command::Put {
            project,
            pool,
            url,
            batch_records,
            max_attempts,
            quiet,
            wait,
            wait_timeout_secs,
            file,
            ca_cert,
            api_key,
        } => {
            let options = PutOptions {
                url,
                project,
                pool,
                file,
                batch_records,
                batch_bytes: 8 * 1024 * 1024,
                max_attempts,
                quiet,
                ca_cert,
                api_key,
                wait: wait.then(|| Duration::from_secs(wait_timeout_secs)),
            };
            let accepted = put(&options).await?;
            eprintln!("{accepted} records accepted");
            Ok(())
        }
        Command::Bench(args) => {
            let report = logpool_bench::run(&args).await?;
            if args.json {
                // The table goes to stderr so that stdout stays one JSON document.
                eprint!("{}", report.to_table());
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            Ok(())
        }
        Command::Search {
            project,
            pool,
            url,
            from,
            to,
            limit,
            json,
            query,
            ca_cert,
            api_key,
        } => {
            search(&SearchOptions {
                url,
                project,
                pool,
                query,
                from,
                to,
                limit,
                json,
                ca_cert,
                api_key,
            })
            .await?;
            Ok(())
        }
    }
}

async fn run_standalone(config: Config) -> anyhow::Result<()> {
    // Before anything is opened: files private to this user, the full open-file limit.
    logpool_api::process::prepare();
    let listener = logpool_api::node::bind(&config).await?;
    let data_dir = config.data_dir.clone();
    let scheme = if config.tls.enabled() {
        "https"
    } else {
        "http"
    };
    let running = logpool_standalone::start(config, listener).await?;
    tracing::info!(addr = %running.addr, scheme, data_dir = %data_dir.display(), "logpool standalone is ready");
    logpool_api::service_main::shutdown_signal().await;
    tracing::info!("shutting down: draining requests, committing the index");
    running.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
