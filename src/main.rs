//! The `disco` binary: parse, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use disco::cli::{Cli, Command, LogFormat, RegistrarArgs, ServeArgs, WaitArgs};
use disco::config::{SHUTDOWN_GRACE, ServeConfig, WaitConfig};
use disco::registrar::{self, RegistrarError, config::RegistrarConfig};
use disco::serve::{self, ServeError};

/// Bad usage or configuration (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Registrar(args) => run_registrar(args),
        Command::Wait(args) => run_wait(args),
    }
}

fn run_wait(args: WaitArgs) -> ExitCode {
    let config = match WaitConfig::from_args(args, std::path::Path::new("/etc/resolv.conf")) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("disco wait: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("disco wait: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(disco::wait::run(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(timed_out) => {
            eprintln!(
                "disco wait: timed out after {}: {timed_out}",
                humantime::format_duration(config.timeout)
            );
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let config = match ServeConfig::from_args(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("disco: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("disco: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // Listen for signals before anything is served, so that a signal
        // arriving at any point after startup is a clean shutdown.
        let signals = match Signals::new() {
            Ok(signals) => signals,
            Err(err) => {
                eprintln!("disco: cannot install signal handlers: {err}");
                return ExitCode::FAILURE;
            }
        };
        let running = match serve::start(config, Vec::new()).await {
            Ok(running) => running,
            Err(ServeError::Config(err)) => {
                eprintln!("disco: {err}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(err) => {
                tracing::error!("{err}");
                return ExitCode::FAILURE;
            }
        };
        signals.wait().await;
        tracing::info!("shutting down");
        if !running.stop(SHUTDOWN_GRACE).await {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight work did not finish within the grace period");
        }
        ExitCode::SUCCESS
    })
}

fn run_registrar(args: RegistrarArgs) -> ExitCode {
    let config = match RegistrarConfig::from_args(args, &registrar::address::auto) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("disco registrar: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(config.log_format, &config.log_level);
    // One thread: the registrar waits on sockets and timers, and one
    // thread serves a hundred services with fewer wake-ups than two
    // (bench/registrar.sh).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("disco registrar: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let signals = match Signals::new() {
            Ok(signals) => signals,
            Err(err) => {
                eprintln!("disco registrar: cannot install signal handlers: {err}");
                return ExitCode::FAILURE;
            }
        };
        let running = match registrar::start(config).await {
            Ok(running) => running,
            Err(RegistrarError::Config(err)) => {
                eprintln!("disco registrar: {err}");
                return ExitCode::from(EXIT_USAGE);
            }
            Err(err) => {
                tracing::error!("{err}");
                return ExitCode::FAILURE;
            }
        };
        signals.wait().await;
        tracing::info!("shutting down: withdrawing");
        running.stop().await;
        ExitCode::SUCCESS
    })
}

/// SIGTERM and SIGINT, either of which stops the server.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
