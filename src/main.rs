//! The `disco` binary: parse, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use disco::cli::{Cli, Command, LogFormat, RegistrarArgs, ServeArgs, WaitArgs};
use disco::config::{SHUTDOWN_GRACE, ServeConfig, WaitConfig};
use disco::registrar::{self, RegistrarError, config::RegistrarConfig};
use disco::serve::{self, ServeError};

/// mimalloc rather than glibc's malloc: disco holds many small blocks (16
/// per realistic instance, mostly under 64 bytes), which glibc gives a
/// header each and mimalloc's size classes do not: 1,008 resident bytes
/// per instance against 1,099 at 100,000 instances (`bench/heap.rs`), and
/// no arena per thread holding freed memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for `disco serve`. mimalloc reserves its
/// memory 2 MiB-aligned, so where the kernel's THP setting is `always`
/// every first touch of a region clears a whole 2 MiB page: a cold start of
/// a million instances from etcd spent a fifth of its CPU in the kernel
/// clearing pages, and took 15.2–16.7 s to `/ready` against 9.0–9.9 s
/// without (four starts each, one core, `bench/scale.sh`'s setup). The
/// flag is the process's (children inherit it; serve starts none). A
/// kernel that refuses it only loses the gain.
fn without_huge_pages() {
    if let Err(err) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!("transparent huge pages stay on: {err}");
    }
}

/// How long a runtime thread that went idle (one that parsed a listing off
/// the worker, see `disco::heavy`) lives on. mimalloc returns the pages a
/// thread freed when the thread ends; with tokio's default of 10 s, a
/// million instances from etcd kept 591 MiB resident for 9 s after
/// `/ready`, then 507 MiB: the listing's freed pages, held until the
/// parsing thread went. Starting a thread again costs tens of
/// microseconds, once per second at most.
const IDLE_THREAD_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Bad usage or configuration (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// Why a command ended with a failure. [`Failure::exit`] is the one place
/// a failure becomes an exit code (DESIGN §4): 64 for bad usage or
/// configuration, found before any port is bound; 1 for a failure at run
/// time. The message is `None` when it was already reported (by clap, or
/// to the log once logging is set up).
enum Failure {
    /// Bad usage or configuration: exit 64.
    Usage(Option<String>),
    /// A runtime failure: exit 1.
    Runtime(Option<String>),
}

impl Failure {
    /// Reports the message on stderr, prefixed with `command`, and gives
    /// the exit code.
    fn exit(self, command: &str) -> ExitCode {
        let (message, code) = match self {
            Failure::Usage(message) => (message, ExitCode::from(EXIT_USAGE)),
            Failure::Runtime(message) => (message, ExitCode::FAILURE),
        };
        if let Some(message) = message {
            eprintln!("{command}: {message}");
        }
        code
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are not failures.
            if !err.use_stderr() {
                return ExitCode::SUCCESS;
            }
            return Failure::Usage(None).exit("disco");
        }
    };
    let (command, result) = match cli.command {
        Command::Serve(args) => ("disco", run_serve(args)),
        Command::Registrar(args) => ("disco registrar", run_registrar(args)),
        Command::Wait(args) => ("disco wait", run_wait(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(command),
    }
}

fn run_wait(args: WaitArgs) -> Result<(), Failure> {
    let config = WaitConfig::from_args(args, std::path::Path::new("/etc/resolv.conf"))
        .map_err(|err| Failure::Usage(Some(err.to_string())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Runtime(Some(format!("cannot start the runtime: {err}"))))?;
    runtime
        .block_on(disco::wait::run(&config))
        .map_err(|timed_out| {
            Failure::Runtime(Some(format!(
                "timed out after {}: {timed_out}",
                humantime::format_duration(config.timeout)
            )))
        })
}

fn run_serve(args: ServeArgs) -> Result<(), Failure> {
    let config =
        ServeConfig::from_args(args).map_err(|err| Failure::Usage(Some(err.to_string())))?;
    init_logging(config.log_format, &config.log_level);
    without_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(IDLE_THREAD_EXIT)
        .build()
        .map_err(|err| Failure::Runtime(Some(format!("cannot start the runtime: {err}"))))?;
    runtime.block_on(async {
        // Listen for signals before anything is served, so that a signal
        // arriving at any point after startup is a clean shutdown.
        let signals = Signals::new().map_err(|err| {
            Failure::Runtime(Some(format!("cannot install signal handlers: {err}")))
        })?;
        let running = match serve::start(config, Vec::new()).await {
            Ok(running) => running,
            Err(ServeError::Config(err)) => return Err(Failure::Usage(Some(err.to_string()))),
            Err(err) => {
                tracing::error!("{err}");
                return Err(Failure::Runtime(None));
            }
        };
        signals.wait().await;
        tracing::info!("shutting down");
        if !running.stop(SHUTDOWN_GRACE).await {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight work did not finish within the grace period");
        }
        Ok(())
    })
}

fn run_registrar(args: RegistrarArgs) -> Result<(), Failure> {
    let config = RegistrarConfig::from_args(args, &registrar::address::auto)
        .map_err(|err| Failure::Usage(Some(err.to_string())))?;
    init_logging(config.log_format, &config.log_level);
    // One thread: the registrar waits on sockets and timers, and one
    // thread serves a hundred services with fewer wake-ups than two
    // (bench/registrar.sh).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Runtime(Some(format!("cannot start the runtime: {err}"))))?;
    runtime.block_on(async {
        let signals = Signals::new().map_err(|err| {
            Failure::Runtime(Some(format!("cannot install signal handlers: {err}")))
        })?;
        let running = match registrar::start(config).await {
            Ok(running) => running,
            Err(RegistrarError::Config(err)) => return Err(Failure::Usage(Some(err))),
            Err(err) => {
                tracing::error!("{err}");
                return Err(Failure::Runtime(None));
            }
        };
        signals.wait().await;
        tracing::info!("shutting down: withdrawing");
        running.stop().await;
        Ok(())
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
