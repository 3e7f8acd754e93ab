//! WebTorrent JSON both ways: client messages as the tracker reads them,
//! tracker messages as the client reads them.
#![no_main]
use bittorrent_tracker::protocol::ws;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ws::parse(text);
        let _ = ws::parse_server_message(text);
        let _ = ws::binary20(text);
    }
});
