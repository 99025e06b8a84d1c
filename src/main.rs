//! `relay-server`: parse the command line and configuration, start the server, wait for a
//! signal or SHUTDOWN.

use clap::{Arg, ArgAction, Command};
use relay::config::{Config, ACCEPTED, OPTIONS};
use std::process::ExitCode;
use tracing_subscriber::{fmt, prelude::*, reload, EnvFilter};

fn cli() -> Command {
    let mut cmd = Command::new("relay-server")
        .version(relay::RELAY_VERSION)
        .about("A message broker that speaks the Redis protocol")
        .arg(
            Arg::new("config")
                .long("config")
                .short('c')
                .value_name("FILE")
                .help("TOML configuration file; command-line options override it"),
        )
        .arg(
            Arg::new("check-aof")
                .long("check-aof")
                .value_name("FILE")
                .help("Check an append-only file and exit: a .aof file of the AOF directory (valid, torn at the end — repairable with --fix — or damaged), or its .manifest (the manifest, that every file it names exists, and each file in load order)"),
        )
        .arg(
            Arg::new("fix")
                .long("fix")
                .action(ArgAction::SetTrue)
                .requires("check-aof")
                .help("With --check-aof: truncate a torn last write"),
        );
    // One flag per configuration option, generated from the same table as CONFIG GET/SET;
    // then the Redis configuration names Relay accepts without a mechanism behind them.
    for opt in OPTIONS {
        cmd = cmd.arg(
            Arg::new(opt.name)
                .long(opt.name)
                .value_name("VALUE")
                .action(ArgAction::Set)
                .allow_hyphen_values(true)
                .help(format!("{} [default: {:?}]", opt.doc, opt.default)),
        );
    }
    for a in ACCEPTED {
        let mut arg = Arg::new(a.name)
            .long(a.name)
            .value_name("VALUE")
            .action(ArgAction::Set)
            .allow_hyphen_values(true)
            .hide(true)
            .help(format!(
                "Accepted for compatibility with Redis [default: {:?}]",
                a.default
            ));
        if let Some(alias) = a.alias {
            arg = arg.alias(alias);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

fn load_config(matches: &clap::ArgMatches) -> Result<Config, String> {
    let mut config = Config::default();
    if let Some(path) = matches.get_one::<String>("config") {
        config.load_file(std::path::Path::new(path))?;
    }
    let names = OPTIONS
        .iter()
        .map(|o| o.name)
        .chain(ACCEPTED.iter().map(|a| a.name));
    for name in names {
        if let Some(v) = matches.get_one::<String>(name) {
            config.set(name, v).map_err(|e| format!("--{name}: {e}"))?;
        }
    }
    Ok(config)
}

/// The tracing filter for a Redis log level.
fn filter_for(loglevel: &str) -> EnvFilter {
    let level = match loglevel {
        "debug" => "debug",
        "verbose" | "notice" => "info",
        "nothing" => "off",
        _ => "warn",
    };
    EnvFilter::new(format!("relay={level}"))
}

/// Install the logger; returns the hook CONFIG SET loglevel calls to change the filter.
fn init_logging(config: &Config) -> Result<relay::server::LogHook, String> {
    // RELAY_LOG (tracing filter syntax) overrides loglevel at start.
    let initial =
        EnvFilter::try_from_env("RELAY_LOG").unwrap_or_else(|_| filter_for(&config.loglevel));
    let (filter, reload) = reload::Layer::new(initial);
    let output = if config.logfile.is_empty() {
        fmt::layer().with_target(false).boxed()
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.logfile)
            .map_err(|e| format!("Can't open the log file {}: {e}", config.logfile))?;
        fmt::layer()
            .with_target(false)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    Ok(Box::new(move |level: &str| {
        reload.reload(filter_for(level)).map_err(|e| e.to_string())
    }))
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    if let Some(file) = matches.get_one::<String>("check-aof") {
        let code =
            relay::persist::load::check_file(std::path::Path::new(file), matches.get_flag("fix"));
        return ExitCode::from(code);
    }
    let config = match load_config(&matches) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("*** FATAL CONFIG ERROR *** {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_hook = match init_logging(&config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // One thread by default, as Redis: no cross-thread wake-ups on the request path.
    let mut builder = if config.io_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.io_threads as usize);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        tracing::info!(
            "Relay {} starting (Redis {} compatible), pid {}",
            relay::RELAY_VERSION,
            relay::REDIS_COMPAT_VERSION,
            std::process::id()
        );
        let handle = match relay::Server::start(config).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        handle.shared.set_log_hook(log_hook);
        let shared = handle.shared.clone();
        let shared_for_exit = handle.shared.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!("Received shutdown signal, scheduling shutdown...");
            shared.request_shutdown();
        });
        handle.stopped().await;
        if let Some(why) = shared_for_exit.failure() {
            tracing::error!("Relay did not start: {why}");
            return ExitCode::FAILURE;
        }
        tracing::warn!("Relay is now ready to exit, bye bye...");
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
