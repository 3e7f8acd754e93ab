//! Announce and scrape over HTTP(S).

use super::shared::{io, scrape_url, ConnOptions, TrackerError};
use crate::protocol::{http as httpw, AnnounceRequest, AnnounceResponse, InfoHash, ScrapeStats};
use url::Url;

pub struct Http {
    pub(super) url: Url,
    pub(super) agent: ureq::Agent,
    pub(super) opts: ConnOptions,
}

impl Http {
    pub(super) fn new(url: Url, opts: ConnOptions) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .user_agent(opts.user_agent.as_str())
            .http_status_as_error(false)
            .build()
            .new_agent();
        Http { url, agent, opts }
    }

    pub(super) fn get(&self, url: &str) -> Result<Vec<u8>, TrackerError> {
        let mut resp = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::Timeout(_) => TrackerError::Timeout,
            ureq::Error::Io(e) => io(e),
            e => TrackerError::Io(e.to_string()),
        })?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|e| TrackerError::Invalid(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(TrackerError::Invalid(format!(
                "HTTP {status}: {}",
                text.trim()
            )));
        }
        Ok(body)
    }

    pub(super) fn announce(
        &mut self,
        a: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let mut url = self.url.to_string();
        httpw::write_announce_query(a, &self.opts.query, &mut url);
        let body = self.get(&url)?;
        Ok(httpw::parse_announce_response(&body)?)
    }

    pub(super) fn scrape(
        &mut self,
        hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, TrackerError> {
        let mut url = scrape_url(&self.url)
            .ok_or(TrackerError::NoScrape)?
            .to_string();
        httpw::write_scrape_query(hashes, &mut url);
        let body = self.get(&url)?;
        Ok(httpw::parse_scrape_response(&body)?)
    }
}
