//! The `autopilot` binary: parse the command line, load the config, run.

use autopilot::cli::{self, Action};
use autopilot::config;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code for a bad command line or config: nothing was started.
const EXIT_USAGE: u8 = 2;
/// `check -strict`: the config is valid but has warnings.
const EXIT_WARNINGS: u8 = 3;

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
        Action::Help(topic) => {
            match topic {
                Some(command) => print!("{}", cli::help::command(command)),
                None => print!("{}", cli::help::overview()),
            }
            ExitCode::SUCCESS
        }
        Action::Completions(ref shell) => {
            print!("{}", cli::completions::script(shell).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Action::Man => {
            print!("{}", cli::man::page());
            ExitCode::SUCCESS
        }
        Action::Schema => {
            println!("{}", cli::schema::text());
            ExitCode::SUCCESS
        }
        Action::Version => {
            println!("autopilot {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Action::Template { ref out } => template(&cli, out.clone()),
        Action::Check { strict } => check(&cli, strict),
        Action::Migrate { ref out } => migrate(&cli, out.clone()),
        Action::Run => run(&cli),
        Action::Control(ref command) => ExitCode::from(autopilot::cli::control::run(
            command,
            cli.socket.as_deref(),
            cli.config.as_deref(),
        )),
        Action::Events(ref options) => ExitCode::from(autopilot::cli::events::run(
            options,
            cli.socket.as_deref(),
            cli.config.as_deref(),
        )),
        Action::Coordination(ref command) => ExitCode::from(autopilot::cli::coordination::run(
            command,
            cli.config.as_deref(),
            cli.socket.as_deref(),
        )),
    }
}

/// Where the config is: `-config`, else `$CONTAINERPILOT` (a path, a
/// `file://` path, or the JSON itself).
fn config_source(cli: &cli::Cli) -> Result<config::Source, String> {
    config::resolve_source(cli.config.as_deref(), &env_map()).ok_or_else(|| {
        "no config file given: pass -config FILE or set CONTAINERPILOT=FILE, or run one \
         command with `autopilot -- CMD ARGS`\nRun `autopilot help` for the commands."
            .into()
    })
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
    let env = env_map();
    let loaded = config::load_source(&source, &env, &load_options(cli)).map_err(|e| {
        eprintln!("{e}");
        // A template error is in the template itself: no variable rendered.
        let rendered = e.errors().filter(|d| !d.message.starts_with("template:"));
        print_empty_variables(rendered, &template_text(&source), &env);
        ExitCode::from(EXIT_USAGE)
    })?;
    Ok((source, loaded))
}

/// The notes on template variables that rendered empty on the lines of
/// `diagnostics`, each once.
fn print_empty_variables<'a>(
    diagnostics: impl Iterator<Item = &'a config::error::Diagnostic>,
    template: &str,
    env: &HashMap<String, String>,
) {
    let mut notes: Vec<String> = Vec::new();
    for d in diagnostics {
        for note in cli::explain::empty_variables(template, &d.file, d.line, env) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes.iter().for_each(|n| eprintln!("{n}"));
}

/// The config before rendering, to point at the template behind an error.
fn template_text(source: &config::Source) -> String {
    match source {
        config::Source::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
        config::Source::Inline(text) => text.clone(),
    }
}

/// Checks the `consul` settings as discovery will use them. Problems are
/// reported at the `consul` key of the config, as config errors are, with a
/// note when a template variable on that line rendered empty. Returns
/// whether the settings are usable, and how many warnings it printed.
fn check_consul(loaded: &config::Loaded, template: &str) -> (bool, usize) {
    use config::error::{Diagnostic, Severity};
    let Some(consul) = &loaded.config.consul else {
        return (true, 0);
    };
    let file = loaded.path.display().to_string();
    let span = config::source::parse(&loaded.rendered, &file)
        .ok()
        .and_then(|root| root.value.get("consul").map(|v| v.span()));
    let report = |severity: Severity, message: String| match span {
        Some(span) => {
            let d = Diagnostic::at(severity, &loaded.rendered, &file, span, "", message, None);
            eprintln!("{d}");
            for note in cli::explain::empty_variables(template, &file, d.line, &env_map()) {
                eprintln!("{note}");
            }
        }
        None => eprintln!("{severity}: {message}"),
    };
    match autopilot::discovery::validate(consul) {
        Ok(warnings) => {
            for w in &warnings {
                report(Severity::Warning, w.to_string());
            }
            (true, warnings.len())
        }
        Err(e) => {
            report(Severity::Error, e.to_string());
            (false, 0)
        }
    }
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

/// `autopilot check`: the plan on stdout; errors and warnings on stderr,
/// each located and excerpted. With `strict`, warnings fail (exit 3).
fn check(cli: &cli::Cli, strict: bool) -> ExitCode {
    let loaded = match load(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut warnings = loaded.warnings.len();
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    let template = config_source(cli)
        .map(|s| template_text(&s))
        .unwrap_or_default();
    print_empty_variables(loaded.warnings.iter(), &template, &env_map());
    match check_consul(&loaded, &template) {
        (true, found) => warnings += found,
        (false, _) => return ExitCode::from(EXIT_USAGE),
    }
    let plan = autopilot::plan::plan(&loaded.config);
    for line in &plan.lines {
        println!("{line}");
    }
    let file = loaded.path.display().to_string();
    let (problems, notes): (Vec<_>, Vec<_>) = plan
        .warnings
        .iter()
        .partition(|w| w.level == autopilot::plan::Level::Warning);
    if !notes.is_empty() {
        println!();
        notes.iter().for_each(|n| println!("{n}"));
    }
    for warning in &problems {
        eprintln!("{}", warning.diagnostic(&loaded.rendered, &file));
    }
    warnings += problems.len();
    if strict && warnings > 0 {
        eprintln!(
            "autopilot: check -strict: {warnings} warning{} (exit {EXIT_WARNINGS})",
            if warnings == 1 { "" } else { "s" }
        );
        return ExitCode::from(EXIT_WARNINGS);
    }
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

/// How a reload (the control socket's, or ContainerPilot 2's SIGHUP)
/// re-reads the config: from the same place, with the same command line,
/// plus the telemetry job.
fn loader(source: config::Source, options: config::LoadOptions) -> autopilot::control::Loader {
    autopilot::control::Loader {
        label: source.label(),
        load: Arc::new(move |env| {
            let loaded = config::load_source(&source, &env, &options).map_err(|e| e.to_string())?;
            for warning in &loaded.warnings {
                log::warn!("{warning}");
            }
            autopilot::telemetry::prepare(loaded.config)
        }),
    }
}

/// Start-up, in layer order: the supervisor's shared parts; discovery
/// (Consul registrations and watches); coordination (leader elections
/// beside the registry); the control socket and telemetry; then the jobs.
/// Returns the container's exit code.
async fn start_and_run(
    config: config::model::Config,
    control: autopilot::control::ControlPlane,
    loader: Option<autopilot::control::Loader>,
) -> i32 {
    let mut supervisor = match autopilot::supervisor::Supervisor::new(config) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let common = supervisor.common();
    let config = common.config.borrow().clone();
    let discovery = match autopilot::discovery::start(&config, &common) {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return i32::from(EXIT_USAGE);
        }
    };
    let registry = autopilot::coordination::start(&config, &discovery, &common);
    let (sighup_tx, sighup_reloads) = tokio::sync::mpsc::unbounded_channel();
    if loader.is_some() {
        supervisor.reload_on_sighup(sighup_tx);
    }
    control.start(autopilot::control::Wiring {
        common,
        requests: supervisor.requests(),
        editor: discovery.editor(),
        loader,
        sighup_reloads,
    });
    supervisor.run(registry).await
}

/// `autopilot -- CMD ARGS` (or `autopilot CMD ARGS`) with no config: CMD is
/// the one, main job, as under tini. Its output and stdin are its own, and
/// autopilot only speaks up for problems.
fn command_config(command: &[String]) -> Result<config::Loaded, ExitCode> {
    let base = std::path::Path::new(&command[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = if !base.is_empty()
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        base
    } else {
        "main".to_string()
    };
    let text = serde_json::json!({
        "logging": {"level": "WARN"},
        "jobs": [{"name": name, "exec": command, "main": true, "logging": {"raw": true}}],
    })
    .to_string();
    let mut loaded = config::parse_str(&text, "<command line>").map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    loaded.config.signals = config::model::SignalMode::Forward;
    Ok(loaded)
}

fn run(cli: &cli::Cli) -> ExitCode {
    autopilot::logging::init();
    panics::install();
    let (source, loaded) = match config_source(cli) {
        Err(_) if !cli.rest.is_empty() => match command_config(&cli.rest) {
            Ok(loaded) => (None, loaded),
            Err(code) => return code,
        },
        _ => match load_from(cli) {
            Ok((source, loaded)) => (Some(source), loaded),
            Err(code) => return code,
        },
    };
    let tini = source.is_none();
    // A bad `consul` stops autopilot before anything starts, explained as
    // `check` explains it (discovery itself would only say what is wrong).
    let bad_consul = loaded
        .config
        .consul
        .as_ref()
        .is_some_and(|c| autopilot::discovery::validate(c).is_err());
    if let Some(source) = source.as_ref().filter(|_| bad_consul) {
        check_consul(&loaded, &template_text(source));
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(e) = autopilot::logging::configure(&loaded.config.logging) {
        eprintln!("autopilot: cannot open the log output: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    for warning in &loaded.warnings {
        log::warn!("{warning}");
    }
    // `docker run -it`: the main job gets the terminal, as a shell's job
    // would. Not in a developer's terminal (not PID 1), where Ctrl-C is meant
    // for autopilot, to run the config's shutdown.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    autopilot::process::give_stdin_to_main(tini || (terminal && std::process::id() == 1));
    // The running config: the file's plus the telemetry service job.
    let config = match autopilot::telemetry::prepare(loaded.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autopilot: {}: {e}", loaded.path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Claimed before anything starts: a socket or port in use stops us here.
    let env = env_map();
    let socket =
        autopilot::control::socket_path(cli.socket.as_deref(), Some(&config.control), &env);
    if socket != config.control.socket && socket == autopilot::control::default_socket(&env) {
        log::info!(
            "control: {} is not writable (not root?), so the control socket is {}; \
             the status and control commands find it there too",
            config
                .control
                .socket
                .parent()
                .unwrap_or(&config.control.socket)
                .display(),
            socket.display()
        );
    }
    if let Err(e) = autopilot::control::prepare_socket_dir(&socket, &env) {
        eprintln!("autopilot: control socket: {e}");
        return ExitCode::FAILURE;
    }
    let control = match autopilot::control::ControlPlane::bind(&config, &socket) {
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
    let loader = source.map(|source| loader(source, load_options(cli)));
    #[cfg(debug_assertions)]
    panics::test_trigger(&runtime);
    let code = runtime.block_on(start_and_run(config, control, loader));
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
