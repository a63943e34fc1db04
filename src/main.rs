//! The `autopilot` binary: parse the command line, load the config, run.

use autopilot::cli::{self, Action};
use autopilot::config;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a bad command line or config: nothing was started.
const EXIT_USAGE: u8 = 2;

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
        Action::Run => run(&cli),
    }
}

/// The config path: `-config`, else `$CONTAINERPILOT`.
fn config_path(cli: &cli::Cli) -> Result<PathBuf, String> {
    let raw = cli
        .config
        .clone()
        .or_else(|| std::env::var("CONTAINERPILOT").ok().filter(|v| !v.is_empty()))
        .ok_or("no config file given: pass -config FILE or set CONTAINERPILOT=FILE")?;
    Ok(PathBuf::from(raw.strip_prefix("file://").unwrap_or(&raw)))
}

fn env_map() -> HashMap<String, String> {
    std::env::vars().collect()
}

fn load(cli: &cli::Cli) -> Result<config::Loaded, ExitCode> {
    let path = config_path(cli).map_err(|e| {
        eprintln!("autopilot: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    config::load(&path, &env_map()).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn template(cli: &cli::Cli, out: Option<PathBuf>) -> ExitCode {
    let path = match config_path(cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("autopilot: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let rendered = match config::render_only(&path, &env_map()) {
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
    print!("{}", autopilot::plan::plan(&loaded.config));
    ExitCode::SUCCESS
}

/// The pieces started beside the jobs; each decides from the config whether
/// it has anything to do.
fn extensions() -> Vec<autopilot::supervisor::Extension> {
    vec![]
}

fn run(cli: &cli::Cli) -> ExitCode {
    autopilot::logging::init();
    let loaded = match load(cli) {
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
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("autopilot: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(autopilot::supervisor::run(loaded.config, extensions()));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
