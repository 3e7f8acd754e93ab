//! The `bittorrent-tracker` command.

use bittorrent_tracker::client;
use bittorrent_tracker::config::{Cli, Command, LogLevel};
use bittorrent_tracker::Server;
use clap::Parser;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    match cli.command.take() {
        Some(Command::Announce(a)) => return client::cli::announce(a),
        Some(Command::Scrape(a)) => return client::cli::scrape(a),
        None => {}
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
        print!("{}", cfg.to_toml());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = bittorrent_tracker::server::allow_huge_pages(cfg.huge_pages) {
        if cfg.log >= LogLevel::Warnings {
            eprintln!("warning: cannot set whether transparent huge pages are used: {e}");
        }
    }
    let log = cfg.log;
    let (http, udp, ws) = (cfg.http, cfg.udp, cfg.ws);
    let server = match Server::start(cfg) {
        Ok(s) => s,
        Err(e) => {
            if log >= LogLevel::Errors {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let stop = server.shutdown_flag();
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
            eprintln!("error: cannot handle signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if log >= LogLevel::Info {
        let port = server.port();
        if http && !server.http_addrs().is_empty() {
            println!("http server listening on {port}");
        }
        if udp && !server.udp_addrs().is_empty() {
            println!("udp server listening on {port}");
        }
        if ws && !server.http_addrs().is_empty() {
            println!("ws server listening on {port}");
        }
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            match server.reload() {
                Ok(()) if log >= LogLevel::Info => {
                    eprintln!("reloaded the lists and TLS certificate (SIGHUP)")
                }
                Ok(()) => {}
                Err(e) if log >= LogLevel::Errors => {
                    eprintln!("error: reload refused, keeping what was loaded: {e}")
                }
                Err(_) => {}
            }
        }
    }
    server.wait();
    if log >= LogLevel::Info {
        println!("tracker stopped");
    }
    ExitCode::SUCCESS
}
