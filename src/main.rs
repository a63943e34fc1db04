//! The `autopilot` binary: parse the command line, load the config, run.

use autopilot::cli::{self, Action};
use autopilot::config;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code for a bad command line or config: nothing was started.
const EXIT_USAGE: u8 = 2;

/// Exit code after an internal error (a panic), when the jobs' own outcome
/// would have been 0: BSD's EX_SOFTWARE.
const EXIT_INTERNAL: u8 = 70;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("autopilot: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.action {
        Action::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Action::Version => {
            println!("autopilot {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Action::Template { ref out } => template(&cli, out.clone()),
        Action::Check => check(&cli),
        Action::Migrate { ref out } => migrate(&cli, out.clone()),
        Action::Run => run(&cli),
        Action::Control(ref command) => ExitCode::from(autopilot::control::commands::run(
            command,
            cli.socket.as_deref(),
            cli.config.as_deref(),
        )),
        Action::Coordination(ref command) => ExitCode::from(autopilot::coordination::cli::run(
            command,
            cli.config.as_deref(),
            cli.socket.as_deref(),
        )),
    }
}

/// Where the config is: `-config`, else `$CONTAINERPILOT` (a path, a
/// `file://` path, or the JSON itself).
fn config_source(cli: &cli::Cli) -> Result<config::Source, String> {
    config::resolve_source(cli.config.as_deref(), &env_map())
        .ok_or_else(|| "no config file given: pass -config FILE or set CONTAINERPILOT=FILE".into())
}

/// What the command line adds to the config: a ContainerPilot 2 app, and
/// this binary's path for the jobs that call autopilot back.
fn load_options(cli: &cli::Cli) -> config::LoadOptions {
    config::LoadOptions {
        app: cli.rest.clone(),
        self_exe: std::env::current_exe().ok(),
    }
}

fn env_map() -> HashMap<String, String> {
    std::env::vars().collect()
}

fn load(cli: &cli::Cli) -> Result<config::Loaded, ExitCode> {
    load_from(cli).map(|(_, loaded)| loaded)
}

/// [`load`], also returning where the config came from (for reloads).
fn load_from(cli: &cli::Cli) -> Result<(config::Source, config::Loaded), ExitCode> {
    let source = config_source(cli).map_err(|e| {
        eprintln!("autopilot: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let loaded = config::load_source(&source, &env_map(), &load_options(cli)).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    Ok((source, loaded))
}

fn template(cli: &cli::Cli, out: Option<PathBuf>) -> ExitCode {
    let source = match config_source(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("autopilot: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rendered = match config::render_source(&source, &env_map()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match out.filter(|o| o.as_os_str() != "-") {
        Some(file) => {
            if let Err(e) = std::fs::write(&file, rendered) {
                eprintln!("autopilot: cannot write {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{rendered}"),
    }
    ExitCode::SUCCESS
}

fn check(cli: &cli::Cli) -> ExitCode {
    let loaded = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    if let Some(consul) = &loaded.config.consul {
        match autopilot::discovery::validate(consul) {
            Ok(warnings) => warnings.iter().for_each(|w| eprintln!("warning: {w}")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    print!("{}", autopilot::plan::plan(&loaded.config));
    ExitCode::SUCCESS
}

/// `autopilot migrate`: the config as ContainerPilot 3 JSON5, to `-out` or stdout.
fn migrate(cli: &cli::Cli, out: Option<PathBuf>) -> ExitCode {
    let (source, loaded) = match load_from(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let migration = config::migrate::migrate(&loaded.config, &source.label());
    for todo in &migration.todo {
        eprintln!("warning: edit the output before using it: {todo}");
    }
    let text = migration.text;
    match out.filter(|o| o.as_os_str() != "-") {
        Some(file) => {
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("autopilot: cannot write {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            eprintln!("autopilot: wrote {}", file.display());
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}

/// How the supervisor re-reads the config for ContainerPilot 2's SIGHUP:
/// from the same place, with the same command line, plus the telemetry job.
fn reloader(
    source: config::Source,
    options: config::LoadOptions,
) -> autopilot::supervisor::Reloader {
    Arc::new(move |env| {
        let loaded = config::load_source(&source, &env, &options).map_err(|e| e.to_string())?;
        for warning in &loaded.warnings {
            log::warn!("{warning}");
        }
        autopilot::telemetry::prepare(loaded.config)
    })
}

/// The pieces started beside the jobs; each decides from the config whether
/// it has anything to do.
fn extensions(control: autopilot::control::ControlPlane) -> Vec<autopilot::supervisor::Extension> {
    let mut all = vec![autopilot::discovery::extension()];
    all.extend(control.extensions());
    all
}

fn run(cli: &cli::Cli) -> ExitCode {
    autopilot::logging::init();
    panics::install();
    let (source, loaded) = match load_from(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(e) = autopilot::logging::configure(&loaded.config.logging) {
        eprintln!("autopilot: cannot open the log output: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    // The running config: the file's plus the telemetry service job.
    let config = match autopilot::telemetry::prepare(loaded.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autopilot: {}: {e}", loaded.path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Claimed before anything starts: a socket or port in use stops us here.
    let socket =
        autopilot::control::socket_path(cli.socket.as_deref(), Some(&config.control), &env_map());
    let control = match autopilot::control::ControlPlane::bind(&config, &loaded.path, &socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autopilot: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("autopilot: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reload = reloader(source, load_options(cli));
    #[cfg(debug_assertions)]
    panics::test_trigger(&runtime);
    let code = runtime.block_on(autopilot::supervisor::run_with(
        config,
        extensions(control),
        Some(reload),
    ));
    match u8::try_from(code).unwrap_or(1) {
        0 if panics::happened() => ExitCode::from(EXIT_INTERNAL),
        code => ExitCode::from(code),
    }
}

/// What a panic does to a running autopilot.
///
/// The release profile unwinds (see Cargo.toml), so a panic in a task ends
/// that task only: tokio catches it, and PID 1 goes on reaping and
/// forwarding signals. But the task had a duty (a job's runner, a watch, the
/// Consul registration, the control socket) that nothing now performs, and
/// silently running without it would leave the container blind. So the
/// first panic is logged as an error, with where it happened, and starts the
/// same orderly shutdown as SIGTERM: every job is stopped with its stop
/// hooks, services are deregistered, and autopilot exits non-zero (the jobs'
/// code, or 70) so that the orchestrator restarts the container whole.
///
/// A panic in the supervisor's own loop cannot be survived: it unwinds out
/// of `main`, and the kernel ends the container as for any PID 1 exit.
mod panics {
    use std::sync::atomic::{AtomicBool, Ordering};

    static PANICKED: AtomicBool = AtomicBool::new(false);

    /// Logs every panic as an error; the first one also asks for shutdown.
    pub fn install() {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let location = info
                .location()
                .map_or_else(|| "an unknown place".into(), |l| l.to_string());
            let thread = std::thread::current();
            log::error!(
                "internal error: a task panicked at {location} (thread {}): {message}. \
                 This is a bug in autopilot; please report it with this line",
                thread.name().unwrap_or("unnamed")
            );
            if !PANICKED.swap(true, Ordering::SeqCst) {
                log::error!(
                    "stopping every job cleanly after the internal error; \
                     autopilot will exit non-zero (70 unless a job's code says otherwise)"
                );
                // The supervisor treats it as a SIGTERM: the orderly shutdown.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::this(),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }));
    }

    /// Whether any panic happened.
    pub fn happened() -> bool {
        PANICKED.load(Ordering::SeqCst)
    }

    /// Debug builds only, for the integration test of this mechanism: with
    /// `AUTOPILOT_TEST_PANIC=task`, a task spawned beside the supervisor
    /// panics at the first SIGUSR2, as a bug in one of its tasks would.
    #[cfg(debug_assertions)]
    pub fn test_trigger(runtime: &tokio::runtime::Runtime) {
        use tokio::signal::unix::{SignalKind, signal};
        if std::env::var("AUTOPILOT_TEST_PANIC").as_deref() != Ok("task") {
            return;
        }
        let _guard = runtime.enter();
        let Ok(mut usr2) = signal(SignalKind::user_defined2()) else {
            return;
        };
        runtime.spawn(async move {
            usr2.recv().await;
            panic!("AUTOPILOT_TEST_PANIC asked for a panic in a task");
        });
    }
}
