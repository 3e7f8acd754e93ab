//! Who may use the tracker: allow and deny lists of info hashes (files,
//! reloaded on SIGHUP) and the library's filter hook, the reference's
//! `filter(infoHash, params, cb)` in Rust terms.
//!
//! The lists live behind an `Arc` that each worker caches; a reload swaps
//! the shared copy and bumps a generation number that workers look at on
//! their tick, so no request ever takes a lock.

use crate::protocol::Protocol;
use crate::protocol::{InfoHash, PeerId};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// What a request asks, for the filter hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterAction {
    Announce,
    Scrape,
}

/// One request, as the filter hook sees it.
#[derive(Clone, Copy, Debug)]
pub struct FilterRequest<'a> {
    pub action: FilterAction,
    /// `None` for a scrape of every torrent.
    pub info_hash: Option<&'a InfoHash>,
    /// The announcing peer (scrapes have none).
    pub peer_id: Option<&'a PeerId>,
    /// The client's address (from `X-Forwarded-For` with `--trust-proxy`).
    pub addr: IpAddr,
    pub protocol: Protocol,
    /// The request path: `/announce/<passkey>` for HTTP, the upgrade
    /// request's path for WebSocket, the BEP 41 URL data's for UDP.
    pub path: &'a [u8],
    /// The query string, without `?` (HTTP, WebSocket upgrade, BEP 41).
    pub query: &'a [u8],
}

/// The library's filter: `Ok(())` lets a request through, `Err(reason)`
/// refuses it with `reason` as the failure reason (HTTP, WebSocket) or the
/// error packet's message (UDP). It runs on the workers, for every announce
/// and scrape, so it must be quick.
pub type FilterHook = Arc<dyn Fn(&FilterRequest<'_>) -> Result<(), String> + Send + Sync>;

/// The reason a listed-out hash gets.
pub const NOT_ALLOWED: &str = "torrent not allowed on this tracker";

/// Allow and deny lists of info hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// When present, only these hashes are tracked.
    pub allow: Option<HashSet<InfoHash, ahash::RandomState>>,
    pub deny: HashSet<InfoHash, ahash::RandomState>,
}

impl Lists {
    /// Reads the lists from their files.
    pub fn load(allow: Option<&Path>, deny: Option<&Path>) -> Result<Lists, String> {
        Ok(Lists {
            allow: allow.map(read_list).transpose()?,
            deny: deny.map(read_list).transpose()?.unwrap_or_default(),
        })
    }

    /// Nothing is listed: every hash passes.
    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    pub fn allows(&self, h: &InfoHash) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(h)) && !self.deny.contains(h)
    }
}

fn read_list(path: &Path) -> Result<HashSet<InfoHash, ahash::RandomState>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_list(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a list: one info hash a line as 40 hex digits, blank lines, and
/// `#` comments (whole lines, or after the hash).
pub fn parse_list(text: &str) -> Result<HashSet<InfoHash, ahash::RandomState>, String> {
    let mut set = HashSet::with_hasher(ahash::RandomState::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let h = InfoHash::from_hex(line).ok_or_else(|| {
            let shown: String = line.chars().take(60).collect();
            format!(
                "line {}: `{shown}` is not an info hash (40 hex digits)",
                n + 1
            )
        })?;
        set.insert(h);
    }
    Ok(set)
}

/// What a worker checks requests against.
#[derive(Clone, Default)]
pub(crate) struct Access {
    pub lists: Arc<Lists>,
    pub hook: Option<FilterHook>,
}

impl Access {
    /// No lists and no hook: nothing to check.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.hook.is_none() && self.lists.is_open()
    }

    /// Checks one request; the reason when it is refused.
    pub fn check(&self, r: &FilterRequest<'_>) -> Result<(), String> {
        if let Some(h) = r.info_hash {
            if !self.lists.allows(h) {
                return Err(NOT_ALLOWED.into());
            }
        }
        match &self.hook {
            Some(hook) => hook(r),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn lists_with_comments_and_blank_lines() {
        let text = format!(
            "# allowed\n\n{A}  # ubuntu\n  {}\n",
            A.to_uppercase().replace('0', "f")
        );
        let set = parse_list(&text).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&InfoHash::from_hex(A).unwrap()));
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse_list(&format!("{A}\nnot-a-hash\n")).unwrap_err();
        assert_eq!(
            e,
            "line 2: `not-a-hash` is not an info hash (40 hex digits)"
        );
        assert!(parse_list(&A[..39]).is_err());
    }

    #[test]
    fn allow_and_deny() {
        let h = InfoHash::from_hex(A).unwrap();
        let other = InfoHash([9; 20]);
        let mut l = Lists::default();
        assert!(l.is_open() && l.allows(&h));
        l.deny.insert(h);
        assert!(!l.allows(&h) && l.allows(&other));
        let mut allow = HashSet::with_hasher(ahash::RandomState::new());
        allow.insert(other);
        l = Lists {
            allow: Some(allow),
            ..Lists::default()
        };
        assert!(!l.allows(&h) && l.allows(&other));
    }

    #[test]
    fn hook_sees_the_request() {
        let hook: FilterHook = Arc::new(|r: &FilterRequest<'_>| {
            if r.path.ends_with(b"/secret") || r.query.windows(10).any(|w| w == b"passkey=ok") {
                Ok(())
            } else {
                Err("bad passkey".into())
            }
        });
        let access = Access {
            lists: Arc::new(Lists::default()),
            hook: Some(hook),
        };
        let h = InfoHash([1; 20]);
        let mut r = FilterRequest {
            action: FilterAction::Announce,
            info_hash: Some(&h),
            peer_id: None,
            addr: "127.0.0.1".parse().unwrap(),
            protocol: Protocol::Http,
            path: b"/announce/secret",
            query: b"",
        };
        assert!(access.check(&r).is_ok());
        r.path = b"/announce";
        assert_eq!(access.check(&r), Err("bad passkey".into()));
        r.query = b"a=1&passkey=ok";
        assert!(access.check(&r).is_ok());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs(text in ".{0,400}") {
            let _ = parse_list(&text);
        }
    }
}
