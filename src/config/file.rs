//! The TOML file (`--config`): it sets [`ServerConfig`]'s fields by their
//! names, `[limits]` its limits; an unknown key is an error that names it.
//! Paths in it are taken from the file's directory.

use super::{default_workers, ConfigError, ServerConfig};
use std::path::Path;

/// The configuration a TOML text gives over the defaults, checked (what
/// `--config` reads, without its paths made relative to a file).
pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
    let c = parse(text)?;
    c.check()?;
    Ok(c)
}

/// Reads a configuration file over the defaults, unchecked (the command
/// line may still change it). Relative paths in it are taken from the
/// file's directory.
pub fn read_file(path: &Path) -> Result<ServerConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::other(format!("cannot read {}: {e}", path.display())))?;
    let mut c = parse(&text).map_err(|e| e.in_file(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut c.allow,
        &mut c.deny,
        &mut c.tls_cert,
        &mut c.tls_key,
        &mut c.state,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    Ok(c)
}

/// The file's settings over the defaults. The interval also moves
/// `min_interval` and `peer_ttl` unless the file names them, and naming an
/// IPv6 address requires IPv6.
fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
    let mut c: ServerConfig = toml::from_str(text).map_err(|e| error(text, &e))?;
    // It parsed as a whole, so it parses as a table: which keys it names.
    let named: toml::Table = text.parse().map_err(|e| error(text, &e))?;
    if named.contains_key("interval") {
        let (min, ttl) = (c.min_interval, c.peer_ttl);
        c.set_interval(c.interval);
        if named.contains_key("min_interval") {
            c.min_interval = min;
        }
        if named.contains_key("peer_ttl") {
            c.peer_ttl = ttl;
        }
    }
    // An IPv6 address named in the file is required; `::`, the default
    // (and what --print-config writes), still falls back to IPv4 with a
    // warning on a host without IPv6.
    if named.contains_key("listen_v6") {
        c.require_v6 = c.listen_v6.is_some_and(|a| !a.is_unspecified());
    }
    if c.workers == 0 {
        c.workers = default_workers();
    }
    Ok(c)
}

/// A parse error, with the key it is about: the one on the line the error
/// points at, under its `[section]`.
fn error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().to_string();
    let key = e.span().and_then(|span| {
        let before = &text[..span.start.min(text.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = &text[line_start..];
        let name = line.split(['=', '\n']).next()?.trim();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return None;
        }
        let section = before.lines().rev().find_map(|l| {
            let l = l.split('#').next().unwrap_or("").trim();
            l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
        });
        Some(match section {
            Some(s) => format!("{s}.{name}"),
            None => name.to_string(),
        })
    });
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = match line {
        Some(n) => format!("{message} (line {n})"),
        None => message,
    };
    ConfigError {
        file: None,
        key,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed_and_name_the_key() {
        let e = from_toml("port = 8000\nintervall = 5\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("intervall"), "{e}");
        assert!(e.message.contains("unknown field `intervall`"), "{e}");
        let e = from_toml("port = \"eighty\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("port"), "{e}");
        let e = from_toml("[limits]  # what clients can do\nmax_peers = -1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("limits.max_peers"), "{e}");
        assert!(e.to_string().starts_with("limits.max_peers: "), "{e}");
        let e = from_toml("listen_v4 = \"nowhere\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("listen_v4"), "{e}");
        let e = from_toml("listen_v4 = \"off\"\nlisten_v6 = \"off\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("listen_v4"), "{e}");
        let e = from_toml("log = \"loud\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("log"), "{e}");
        assert!(from_toml("port = [").is_err());
    }

    #[test]
    fn the_interval_moves_what_the_file_does_not_name() {
        let c = from_toml("interval = 1200\n").unwrap();
        assert_eq!((c.min_interval, c.peer_ttl), (600, 2400));
        let c = from_toml("interval = 1200\nmin_interval = 5\n").unwrap();
        assert_eq!((c.min_interval, c.peer_ttl), (5, 2400));
        let c = from_toml("peer_ttl = 99\n").unwrap();
        assert_eq!((c.interval, c.peer_ttl), (600, 99));
        assert!(from_toml("listen_v6 = \"::1\"\n").unwrap().require_v6);
        assert!(
            !from_toml("listen_v6 = \"::\"\n").unwrap().require_v6,
            "what print-config writes"
        );
        assert!(!from_toml("").unwrap().require_v6);
        assert_eq!(
            from_toml("workers = 0\n").unwrap().workers,
            default_workers()
        );
    }
}
