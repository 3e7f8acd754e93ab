//! Log lines: one format for everything the tracker says while it runs,
//! on standard error: `2026-12-01T15:07:01.123Z INFO message`. A line is
//! written with one system call, so lines of different workers never mix.

use crate::config::{LogLevel, ServerConfig};
use crate::protocol::InfoHash;
use crate::protocol::Protocol;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::SystemTime;

/// The word a line of `level` carries.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Silent => "-",
        LogLevel::Errors => "ERROR",
        LogLevel::Warnings => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
    }
}

/// Writes one log line, whatever the configured level (callers check it).
pub fn line(level: LogLevel, msg: fmt::Arguments<'_>) {
    let mut s = String::with_capacity(128);
    // `write!` into a String cannot fail.
    let _ = writeln!(
        s,
        "{} {} {msg}",
        humantime::format_rfc3339_millis(SystemTime::now()),
        level_name(level)
    );
    // Nowhere to report a failed write to standard error.
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Writes `msg` when `cfg` logs lines of `level`.
#[inline]
pub fn log(cfg: &ServerConfig, level: LogLevel, msg: fmt::Arguments<'_>) {
    if cfg.log >= level {
        line(level, msg);
    }
}

/// Logs one request and its outcome at debug level, in one line:
/// `udp announce 127.0.0.1:6881 0123…cdef: ok, 1 seeders 2 leechers 2 peers`.
/// When the tracker logs less than debug it costs one comparison: the
/// outcome is not even formatted.
macro_rules! debug_request {
    ($cfg:expr, $proto:expr, $action:expr, $addr:expr, $hash:expr, $($outcome:tt)+) => {
        if $cfg.log >= $crate::config::LogLevel::Debug {
            $crate::server::logging::request($proto, $action, &$addr, $hash, format_args!($($outcome)+))
        }
    };
}
pub(crate) use debug_request;

/// The line [`debug_request!`] writes.
#[cold]
pub fn request(
    proto: Protocol,
    action: &str,
    addr: &dyn fmt::Display,
    hash: Option<&InfoHash>,
    outcome: fmt::Arguments<'_>,
) {
    let p = proto.name();
    match hash {
        Some(h) => line(
            LogLevel::Debug,
            format_args!("{p} {action} {addr} {h}: {outcome}"),
        ),
        None => line(
            LogLevel::Debug,
            format_args!("{p} {action} {addr}: {outcome}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(level_name(LogLevel::Warnings), "WARN");
        assert_eq!(level_name(LogLevel::Debug), "DEBUG");
    }
}
