//! The `keyward` command. Thin: parse arguments, set up logging, run one subcommand.

mod authorize;
mod bench;
mod deployment;
mod error;
mod logging;
mod open_files;
mod serve;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// keyward: API keys for APIs behind Amazon API Gateway.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "KEYWARD_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logging::Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system in one process on the embedded store.
    Serve(serve::ServeArgs),
    /// Run the authorizer on an event file (at most 1 MiB) against an existing deployment and
    /// explain its decision step by step.
    Authorize(authorize::AuthorizeArgs),
    /// Measure verification against its floor.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage the store itself.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Store(command) => store::run(command).await,
        Command::Authorize(args) => authorize::run(args).await,
        Command::Bench(command) => bench::run(command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}
