//! What the tracker sends a WebSocket client: announce and scrape replies,
//! relayed offers and answers, and failures. The tracker writes them; a
//! client reads them ([`parse_server_message`]).

use super::binary::{binary20, count, to_binary};
use super::request::{Answer, Offer, WsError};
use crate::protocol::{InfoHash, PeerId, ScrapeStats};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Serialize)]
struct AnnounceReply<'a> {
    action: &'static str,
    interval: u32,
    info_hash: &'a str,
    complete: u32,
    incomplete: u32,
}

/// `{action:"announce", interval, info_hash, complete, incomplete}`.
pub fn announce_reply(info_hash: &InfoHash, interval: u32, s: &ScrapeStats) -> String {
    serde_json::to_string(&AnnounceReply {
        action: "announce",
        interval,
        info_hash: &to_binary(&info_hash.0),
        complete: s.complete,
        incomplete: s.incomplete,
    })
    .expect("plain data serializes")
}

/// A WebRTC session description the tracker relays between two peers of a
/// swarm: an offer (to a peer it picked) or the answer to one (to the peer
/// that made the offer). The tracker writes it ([`Relayed::to_json`], or
/// [`offer_message`] and [`answer_message`] from what it parsed), a client
/// reads it ([`ServerMessage::Relayed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    pub info_hash: InfoHash,
    /// The peer it comes from.
    pub peer_id: PeerId,
    pub offer_id: [u8; 20],
    pub sdp: Sdp,
}

/// The session description of a [`Relayed`] message, as JSON
/// (`{"type":"offer","sdp":...}`).
#[derive(Clone, Debug)]
pub enum Sdp {
    Offer(Box<RawValue>),
    Answer(Box<RawValue>),
}

impl Sdp {
    /// The session description's JSON text.
    pub fn json(&self) -> &str {
        match self {
            Sdp::Offer(j) | Sdp::Answer(j) => j.get(),
        }
    }
}

impl PartialEq for Sdp {
    fn eq(&self, other: &Sdp) -> bool {
        matches!(
            (self, other),
            (Sdp::Offer(_), Sdp::Offer(_)) | (Sdp::Answer(_), Sdp::Answer(_))
        ) && self.json() == other.json()
    }
}

impl Eq for Sdp {}

impl Relayed {
    /// `{action:"announce", offer|answer, offer_id, peer_id, info_hash}`.
    pub fn to_json(&self) -> String {
        let (offer, answer) = match &self.sdp {
            Sdp::Offer(o) => (Some(&**o), None),
            Sdp::Answer(a) => (None, Some(&**a)),
        };
        relay(
            &self.info_hash,
            &self.peer_id,
            &self.offer_id,
            offer,
            answer,
        )
    }
}

#[derive(Serialize)]
struct Relay<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a RawValue>,
    offer_id: &'a str,
    peer_id: &'a str,
    info_hash: &'a str,
}

/// A [`Relayed`] message's JSON, from borrowed parts (the server relays
/// what it parsed without copying the session description first).
fn relay(
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &[u8; 20],
    offer: Option<&RawValue>,
    answer: Option<&RawValue>,
) -> String {
    serde_json::to_string(&Relay {
        action: "announce",
        offer,
        answer,
        offer_id: &to_binary(offer_id),
        peer_id: &to_binary(&from.0),
        info_hash: &to_binary(&info_hash.0),
    })
    .expect("plain data serializes")
}

/// The [`Relayed`] offer `o` from `from`, as handed to its receiver.
pub fn offer_message(info_hash: &InfoHash, from: &PeerId, o: &Offer) -> String {
    relay(info_hash, from, &o.offer_id, Some(&o.offer), None)
}

/// The [`Relayed`] answer `a` from `from`, as handed to the offerer.
pub fn answer_message(info_hash: &InfoHash, from: &PeerId, a: &Answer) -> String {
    relay(info_hash, from, &a.offer_id, None, Some(&a.answer))
}

/// `{action:"scrape", files:{<hash>:{complete, incomplete, downloaded}}}`.
pub fn scrape_reply(entries: &[(InfoHash, ScrapeStats)]) -> String {
    #[derive(Serialize)]
    struct File {
        complete: u32,
        incomplete: u32,
        downloaded: u32,
    }
    #[derive(Serialize)]
    struct Reply {
        action: &'static str,
        files: std::collections::BTreeMap<String, File>,
    }
    let files = entries
        .iter()
        .map(|(h, s)| {
            let f = File {
                complete: s.complete,
                incomplete: s.incomplete,
                downloaded: s.downloaded,
            };
            (to_binary(&h.0), f)
        })
        .collect();
    serde_json::to_string(&Reply {
        action: "scrape",
        files,
    })
    .expect("plain data serializes")
}

/// `{"failure reason": ..., action?, info_hash?}`.
pub fn error_reply(e: &WsError) -> String {
    failure(e.reason, e.action, e.info_hash.as_ref())
}

/// A refusal with a reason of the tracker's (its filter's) own making.
pub fn refusal_reply(reason: &str, action: &str, info_hash: Option<&InfoHash>) -> String {
    failure(reason, Some(action), info_hash)
}

fn failure(reason: &str, action: Option<&str>, info_hash: Option<&InfoHash>) -> String {
    #[derive(Serialize)]
    struct Failure<'a> {
        #[serde(rename = "failure reason")]
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        info_hash: Option<String>,
    }
    serde_json::to_string(&Failure {
        reason,
        action,
        info_hash: info_hash.map(|h| to_binary(&h.0)),
    })
    .expect("plain data serializes")
}

/// A message a WebSocket tracker sends to a client.
#[derive(Clone, Debug)]
pub enum ServerMessage {
    /// The reply to an announce.
    /// The reply to an announce; each count as the tracker said it (a
    /// client reads a missing one as 0, a load generator as a fault).
    Announce {
        info_hash: InfoHash,
        interval: Option<u32>,
        complete: Option<u32>,
        incomplete: Option<u32>,
    },
    /// Another peer's offer, or the answer to one of this client's.
    Relayed(Relayed),
    Scrape(Vec<(InfoHash, ScrapeStats)>),
    /// A refusal, with the hash it concerns when the tracker says.
    Failure {
        reason: String,
        info_hash: Option<InfoHash>,
    },
}

#[derive(Deserialize)]
struct RawFile {
    complete: Option<f64>,
    incomplete: Option<f64>,
    downloaded: Option<f64>,
}

#[derive(Deserialize)]
struct RawServer {
    action: Option<String>,
    #[serde(rename = "failure reason")]
    failure: Option<String>,
    info_hash: Option<String>,
    peer_id: Option<String>,
    offer_id: Option<String>,
    offer: Option<Box<RawValue>>,
    answer: Option<Box<RawValue>>,
    interval: Option<f64>,
    complete: Option<f64>,
    incomplete: Option<f64>,
    files: Option<std::collections::BTreeMap<String, RawFile>>,
}

fn small(v: Option<f64>) -> u32 {
    count(v).min(u32::MAX as u64) as u32
}

/// Reads one message from a tracker; the error says what is wrong with it.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, String> {
    let m: RawServer =
        serde_json::from_str(text).map_err(|e| format!("not a tracker message: {e}"))?;
    let hash = |s: &Option<String>| s.as_deref().and_then(binary20).map(InfoHash);
    if let Some(reason) = m.failure {
        return Ok(ServerMessage::Failure {
            reason,
            info_hash: hash(&m.info_hash),
        });
    }
    match m.action.as_deref() {
        Some("scrape") => {
            let files = m.files.ok_or("a scrape reply without files")?;
            let mut out = Vec::with_capacity(files.len());
            for (k, f) in files {
                let h = binary20(&k).ok_or("a scrape key that is not a 20-byte hash")?;
                out.push((
                    InfoHash(h),
                    ScrapeStats {
                        complete: small(f.complete),
                        incomplete: small(f.incomplete),
                        downloaded: small(f.downloaded),
                    },
                ));
            }
            Ok(ServerMessage::Scrape(out))
        }
        Some("announce") => {
            let info_hash = hash(&m.info_hash).ok_or("an announce message without info_hash")?;
            let relayed = |what: &str| -> Result<(PeerId, [u8; 20]), String> {
                let peer = m.peer_id.as_deref().and_then(binary20);
                let offer = m.offer_id.as_deref().and_then(binary20);
                match (peer, offer) {
                    (Some(p), Some(o)) => Ok((PeerId(p), o)),
                    _ => Err(format!("a relayed {what} without peer_id or offer_id")),
                }
            };
            let sdp = match (m.offer, m.answer) {
                (Some(o), _) => Some(("offer", Sdp::Offer(o))),
                (None, Some(a)) => Some(("answer", Sdp::Answer(a))),
                (None, None) => None,
            };
            if let Some((what, sdp)) = sdp {
                let (peer_id, offer_id) = relayed(what)?;
                return Ok(ServerMessage::Relayed(Relayed {
                    info_hash,
                    peer_id,
                    offer_id,
                    sdp,
                }));
            }
            Ok(ServerMessage::Announce {
                info_hash,
                interval: m.interval.map(|i| small(Some(i))),
                complete: m.complete.map(|c| small(Some(c))),
                incomplete: m.incomplete.map(|c| small(Some(c))),
            })
        }
        _ => Err("a message with no known action".into()),
    }
}
