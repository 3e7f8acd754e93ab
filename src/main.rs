//! The `bittorrent-tracker` command.

use bittorrent_tracker::config::{Cli, LogLevel};
use bittorrent_tracker::Server;
use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cfg = match Cli::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
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
    server.wait();
    if log >= LogLevel::Info {
        println!("tracker stopped");
    }
    ExitCode::SUCCESS
}
