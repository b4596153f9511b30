//! The `keyward` command. Thin: parse arguments, set up logging, run one subcommand.

mod authorize;
mod bench;
mod code;
mod connect;
mod deployment;
mod error;
mod keys;
mod logging;
mod open_files;
mod output;
mod report;
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
    /// Measure verification against its floor, or keys as code against a server.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage the store itself.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Manage keys through a deployment's management API (--endpoint, KEYWARD_API_KEY).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Requests per day, of the account or of one key (--key), from the management API.
    Usage(report::UsageArgs),
    /// The audit log, newest first, from the management API.
    Audit(report::AuditArgs),
    /// Check spec files offline: every error, with file, line, column and JSON pointer.
    Validate(code::ValidateArgs),
    /// Compare spec files with the server and show what apply would change.
    Plan(code::PlanArgs),
    /// Make the server match the spec files (or a saved plan), secrets into their sinks.
    Apply(code::ApplyArgs),
    /// Write the account's groups, presets and keys as spec files.
    Import(code::ImportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let done = |r: Result<(), error::CliError>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Serve(args) => done(on_runtime(serve::run(args))),
        Command::Store(command) => done(on_runtime(store::run(command))),
        Command::Authorize(args) => done(on_runtime(authorize::run(args))),
        Command::Bench(bench::BenchCommand::Verify(args)) => done(on_runtime(bench::verify(args))),
        Command::Bench(bench::BenchCommand::Code(args)) => done(code::bench::run(&args)),
        Command::Bench(bench::BenchCommand::Cost(args)) => done(bench::cost::run(&args)),
        Command::Bench(bench::BenchCommand::Revocation(args)) => {
            done(bench::revocation::run(&args))
        }
        Command::Keys(command) => done(keys::run(command)),
        Command::Usage(args) => done(report::usage(args)),
        Command::Audit(args) => done(report::audit(args)),
        Command::Validate(args) => code::validate(&args),
        Command::Plan(args) => code::plan(&args),
        Command::Apply(args) => code::apply(&args),
        Command::Import(args) => code::import(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an async command on a multi-threaded tokio runtime (what `#[tokio::main]` builds).
/// The client commands run without one: their HTTP client blocks, which must not happen on a
/// runtime's worker thread.
fn on_runtime(
    command: impl Future<Output = Result<(), error::CliError>>,
) -> Result<(), error::CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(error::CliError::Runtime)?
        .block_on(command)
}
