//! The `bittorrent-tracker` command.

#![deny(clippy::undocumented_unsafe_blocks)]

use bittorrent_tracker::cli::{Cli, Command};
use bittorrent_tracker::client;
use bittorrent_tracker::config::LogLevel;
use bittorrent_tracker::server::logging;
use bittorrent_tracker::upgrade;
use bittorrent_tracker::Server;
use clap::Parser;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes what `write` makes to standard output: success, or the error
/// (a closed pipe, say) and exit code 1.
fn write_out(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| std::io::Write::flush(&mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // The binary's path and arguments now, before an upgrade replaces the
    // file: SIGUSR2 starts what is at this path then.
    let exe = std::env::current_exe();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Announce(a)) => return client::cli::announce(a),
        Some(Command::Scrape(a)) => return client::cli::scrape(a),
        Some(Command::Upgrade(a)) => {
            return match upgrade::request(&a.pid_file, Duration::from_secs(a.timeout)) {
                Ok(said) => {
                    println!("{said}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {}
    }
    let pid_file = cli.pid_file.clone();
    if cli.man_page {
        return write_out(bittorrent_tracker::manual::write_man_page);
    }
    if let Some(shell) = cli.completions {
        return write_out(|out| {
            bittorrent_tracker::manual::write_completions(shell, out);
            Ok(())
        });
    }
    let print_config = cli.print_config;
    let cfg = match cli.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if print_config {
        return match cfg.to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let log = cfg.log;
    // Every line the running tracker writes, in one format on standard error.
    let say = |level: LogLevel, msg: std::fmt::Arguments<'_>| {
        if log >= level {
            logging::line(level, msg);
        }
    };
    if let Err(e) = bittorrent_tracker::thp::allow_huge_pages(cfg.huge_pages) {
        say(
            LogLevel::Warnings,
            format_args!("cannot set whether transparent huge pages are used: {e}"),
        );
    }
    let (http, udp, ws) = (cfg.http, cfg.udp, cfg.ws);
    // Started by a running tracker to take over from it (see `upgrade`)?
    let successor = match upgrade::Successor::from_env() {
        Ok(s) => s,
        Err(e) => {
            say(LogLevel::Errors, format_args!("upgrade: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let (server, successor) = match successor {
        None => (Server::start(cfg), None),
        Some(mut s) => match s.receive() {
            Ok(handed) => (
                Server::builder().config(cfg).handed(handed).start(),
                Some(s),
            ),
            Err(e) => {
                say(LogLevel::Errors, format_args!("upgrade: {e}"));
                s.failed(&e);
                return ExitCode::FAILURE;
            }
        },
    };
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            say(LogLevel::Errors, format_args!("{e}"));
            if let Some(s) = successor {
                s.failed(&e.to_string());
            }
            return ExitCode::FAILURE;
        }
    };
    let stop = server.shutdown_flag();
    let hup = Arc::new(AtomicBool::new(false));
    let usr2 = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGHUP, &hup),
        (signal_hook::consts::SIGUSR2, &usr2),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            say(
                LogLevel::Errors,
                format_args!("cannot handle signal {sig}: {e}"),
            );
            return ExitCode::FAILURE;
        }
    }
    let port = server.port();
    if http && !server.http_addrs().is_empty() {
        say(
            LogLevel::Info,
            format_args!("http server listening on {port}"),
        );
    }
    if udp && !server.udp_addrs().is_empty() {
        say(
            LogLevel::Info,
            format_args!("udp server listening on {port}"),
        );
    }
    if ws && !server.http_addrs().is_empty() {
        say(
            LogLevel::Info,
            format_args!("ws server listening on {port}"),
        );
    }
    if let Some(path) = &pid_file {
        if let Err(e) = upgrade::write_pid_file(path) {
            say(
                LogLevel::Errors,
                format_args!("cannot write the pid file {}: {e}", path.display()),
            );
        }
    }
    match successor {
        Some(s) => {
            s.serving();
            say(
                LogLevel::Info,
                format_args!("upgrade: took over the running tracker's sockets and swarms"),
            );
            upgrade::notify_systemd(&format!("MAINPID={}\nREADY=1", std::process::id()));
        }
        None => upgrade::notify_systemd("READY=1"),
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if usr2.swap(false, Ordering::Relaxed) {
            let outcome = match &exe {
                Ok(exe) => upgrade::hand_over(&server, exe, &args, &say),
                Err(e) => Err(format!("the path of this binary is unknown: {e}")),
            };
            let told = match &outcome {
                Ok(pid) => format!("ok {pid}"),
                Err(e) => format!("failed: {e}"),
            };
            if let Some(path) = &pid_file {
                let _ = std::fs::write(upgrade::outcome_file(path), format!("{told}\n"));
            }
            match outcome {
                Ok(pid) => {
                    say(
                        LogLevel::Info,
                        format_args!("upgrade: process {pid} serves now; this one stops"),
                    );
                    server.retire();
                    return ExitCode::SUCCESS;
                }
                Err(e) => say(
                    LogLevel::Errors,
                    format_args!("upgrade failed, serving on as before: {e}"),
                ),
            }
        }
        if hup.swap(false, Ordering::Relaxed) {
            match server.reload() {
                Ok(()) => say(
                    LogLevel::Info,
                    format_args!("reloaded the lists and TLS certificate (SIGHUP)"),
                ),
                Err(e) => say(
                    LogLevel::Errors,
                    format_args!("reload refused (SIGHUP), keeping what was loaded: {e}"),
                ),
            }
        }
    }
    upgrade::notify_systemd("STOPPING=1");
    let stopped = server.wait();
    if let Some(path) = &pid_file {
        upgrade::remove_pid_file(path);
    }
    match stopped {
        Ok(()) => {
            say(LogLevel::Info, format_args!("tracker stopped"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(
                LogLevel::Errors,
                format_args!("tracker stopped, and the swarms were not saved: {e}"),
            );
            ExitCode::FAILURE
        }
    }
}
