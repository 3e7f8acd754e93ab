//! Finds peers for a torrent: announces to the trackers given and prints
//! every peer they name, until Ctrl-C or 30 seconds.
//!
//! ```sh
//! cargo run --release --example find_peers -- INFO_HASH_HEX udp://127.0.0.1:8000/announce http://127.0.0.1:8000/announce
//! ```

use bittorrent_tracker::client::{Client, ClientEvent, ClientOptions};
use bittorrent_tracker::{InfoHash, PeerId};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(info_hash) = args.first().and_then(|h| InfoHash::from_hex(h)) else {
        eprintln!("usage: find_peers INFO_HASH_HEX TRACKER_URL...");
        std::process::exit(2);
    };
    let urls: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let client = Client::new(ClientOptions::new(
        info_hash,
        PeerId(*b"-RS0100-example00001"),
        6881,
        &urls,
    ));
    client.start();
    let end = Instant::now() + Duration::from_secs(30);
    while let Ok(event) = client.events().recv_deadline(end) {
        match event {
            ClientEvent::Peer { url, addr } => println!("{addr}  (from {url})"),
            ClientEvent::Update {
                url,
                complete,
                incomplete,
                ..
            } => {
                eprintln!("{url}: {complete} seeders, {incomplete} leechers")
            }
            ClientEvent::Warning { url, message } => eprintln!("{url}: {message}"),
            ClientEvent::Error { message } => {
                eprintln!("error: {message}");
                break;
            }
            _ => {}
        }
    }
    client.stop(); // sends `stopped` to every tracker
}
