//! What operators write: the TOML configuration and allow/deny lists.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = bittorrent_tracker::config::file::from_toml(text) {
            // A configuration that reads prints as one that reads the same.
            let again = bittorrent_tracker::config::file::from_toml(&c.to_toml().expect("what a file says prints")).expect("printed config reads");
            assert_eq!(again.limits, c.limits);
            assert_eq!(again.port, c.port);
        }
        let _ = bittorrent_tracker::config::lists::parse_list(text);
    }
});
