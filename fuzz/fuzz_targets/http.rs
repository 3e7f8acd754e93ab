//! HTTP: whole requests as the server reads them (head, headers, query),
//! bare query strings, and bencoded replies as the client reads them.
#![no_main]
use bittorrent_tracker::protocol::{bencode, http};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bittorrent_tracker::protocol::head::check_request(data);
    let _ = http::parse_announce(data);
    let mut hashes = Vec::new();
    let _ = http::parse_scrape(data, 256, &mut hashes);
    let _ = http::forwarded_for(data);
    if let Ok(v) = bencode::decode(data) {
        // What decodes encodes back to the same bytes when keys were sorted.
        let mut again = Vec::new();
        v.encode(&mut again);
        assert_eq!(bencode::decode(&again).as_ref(), Ok(&v));
    }
    let _ = http::parse_announce_response(data);
    let _ = http::parse_scrape_response(data);
});
