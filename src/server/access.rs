//! Who may use the tracker: the allow and deny lists (read by
//! `config::lists`, reloaded on SIGHUP) and the library's filter hook, the
//! reference's `filter(infoHash, params, cb)` in Rust terms.
//!
//! The lists live behind an `Arc` that each worker caches; a reload swaps
//! the shared copy and bumps a generation number that workers look at on
//! their tick, so no request ever takes a lock.

pub use crate::config::lists::Lists;
use crate::protocol::Protocol;
use crate::protocol::{InfoHash, PeerId};
use std::net::IpAddr;
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
}
