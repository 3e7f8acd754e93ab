//! WebTorrent tracker messages: JSON text frames. `info_hash`, `peer_id`,
//! `offer_id` and `to_peer_id` are 20-character "binary strings" whose
//! characters are the bytes 0-255. Offers and answers (WebRTC session
//! descriptions) pass through untouched as raw JSON.

use super::{AnnounceRequest, Event, InfoHash, PeerId, ScrapeStats};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A WebRTC offer a peer sends with its announce, to be handed to another
/// peer of the swarm.
#[derive(Clone, Debug)]
pub struct Offer {
    pub offer_id: [u8; 20],
    pub offer: Box<RawValue>,
}

/// A peer's answer to an offer it was handed, for the peer that made it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub to_peer_id: PeerId,
    pub offer_id: [u8; 20],
    pub answer: Box<RawValue>,
}

/// A WebSocket announce: the shared request, plus offers and an answer.
/// The server parses it ([`parse`]); a client writes it
/// ([`WsRequest::to_json`]).
#[derive(Clone, Debug)]
pub struct WsAnnounce {
    /// `port` is 0: WebSocket peers are reached through the tracker.
    pub request: AnnounceRequest,
    pub offers: Vec<Offer>,
    pub answer: Option<Answer>,
    /// Only an answer (no event, no `left`, no offers): the sender's state is
    /// left as it is. WebTorrent sends its answers so.
    pub answer_only: bool,
}

/// A message from a WebSocket client to the tracker.
#[derive(Clone, Debug)]
pub enum WsRequest {
    Announce(Box<WsAnnounce>),
    /// Hashes to scrape; empty for every torrent.
    Scrape(Vec<InfoHash>),
}

/// A refused message: its `failure reason`, and what is known of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    pub reason: &'static str,
    pub action: Option<&'static str>,
    pub info_hash: Option<InfoHash>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawOffer {
    offer: Box<RawValue>,
    offer_id: String,
}

#[derive(Deserialize)]
struct Raw {
    action: Option<String>,
    info_hash: Option<OneOrMany>,
    peer_id: Option<String>,
    numwant: Option<f64>,
    uploaded: Option<f64>,
    downloaded: Option<f64>,
    left: Option<f64>,
    event: Option<String>,
    /// A list of offers; anything else is ignored, as the reference does.
    offers: Option<Box<RawValue>>,
    answer: Option<Box<RawValue>>,
    to_peer_id: Option<String>,
    offer_id: Option<String>,
}

/// Decodes a binary string of exactly 20 characters, each at most U+00FF.
pub fn binary20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        if n == 20 || c as u32 > 0xff {
            return None;
        }
        out[n] = c as u32 as u8;
        n += 1;
    }
    (n == 20).then_some(out)
}

/// Encodes bytes as a binary string.
pub fn to_binary(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn count(v: Option<f64>) -> u64 {
    // JSON numbers; negative, fractional or absurd values count as 0.
    v.filter(|x| x.is_finite() && *x >= 0.0)
        .map_or(0, |x| x.min(u64::MAX as f64) as u64)
}

/// Parses one text message.
pub fn parse(text: &str) -> Result<WsRequest, WsError> {
    let err = |reason, action, info_hash| WsError {
        reason,
        action,
        info_hash,
    };
    let raw: Raw =
        serde_json::from_str(text).map_err(|_| err("invalid JSON message", None, None))?;
    match raw.action.as_deref() {
        Some("scrape") => {
            let hashes = match raw.info_hash {
                None => Vec::new(),
                Some(OneOrMany::One(h)) => vec![h],
                Some(OneOrMany::Many(v)) => v,
            };
            let hashes = hashes
                .iter()
                .map(|h| binary20(h).map(InfoHash))
                .collect::<Option<Vec<_>>>()
                .ok_or(err("invalid info_hash", Some("scrape"), None))?;
            Ok(WsRequest::Scrape(hashes))
        }
        Some("announce") => {
            let a = Some("announce");
            let info_hash = match &raw.info_hash {
                Some(OneOrMany::One(h)) => {
                    InfoHash(binary20(h).ok_or(err("invalid info_hash", a, None))?)
                }
                Some(OneOrMany::Many(_)) => return Err(err("invalid info_hash", a, None)),
                None => return Err(err("missing info_hash", a, None)),
            };
            let ih = Some(info_hash);
            let peer_id = PeerId(
                binary20(
                    raw.peer_id
                        .as_deref()
                        .ok_or(err("missing peer_id", a, ih))?,
                )
                .ok_or(err("invalid peer_id", a, ih))?,
            );
            let event = match raw.event.as_deref() {
                None | Some("") | Some("update") => Event::None,
                Some("started") => Event::Started,
                Some("completed") => Event::Completed,
                Some("stopped") => Event::Stopped,
                Some("paused") => Event::Paused,
                Some(_) => return Err(err("invalid event", a, ih)),
            };
            let answer = match (raw.answer, raw.to_peer_id, raw.offer_id.as_deref()) {
                (None, _, _) => None,
                (Some(_), None, _) => return Err(err("missing to_peer_id for answer", a, ih)),
                (Some(_), Some(_), None) => return Err(err("missing offer_id for answer", a, ih)),
                (Some(answer), Some(to), Some(offer_id)) => Some(Answer {
                    to_peer_id: PeerId(binary20(&to).ok_or(err("invalid to_peer_id", a, ih))?),
                    offer_id: binary20(offer_id).ok_or(err("invalid offer_id", a, ih))?,
                    answer,
                }),
            };
            let offers: Vec<RawOffer> = match raw.offers.as_deref().map(RawValue::get) {
                Some(list) if list.starts_with('[') => {
                    serde_json::from_str(list).map_err(|_| err("invalid offers", a, ih))?
                }
                // Absent, null, or not a list: no offers, the announce stands.
                _ => Vec::new(),
            };
            let offers = offers
                .into_iter()
                .map(|o| {
                    Some(Offer {
                        offer_id: binary20(&o.offer_id)?,
                        offer: o.offer,
                    })
                })
                .collect::<Option<Vec<_>>>()
                .ok_or(err("invalid offer_id", a, ih))?;
            let answer_only =
                answer.is_some() && offers.is_empty() && raw.event.is_none() && raw.left.is_none();
            let numwant = raw
                .numwant
                .map(|n| count(Some(n)).min(u32::MAX as u64) as u32);
            Ok(WsRequest::Announce(Box::new(WsAnnounce {
                request: AnnounceRequest {
                    info_hash,
                    peer_id,
                    port: 0,
                    uploaded: count(raw.uploaded),
                    downloaded: count(raw.downloaded),
                    left: raw.left.map(|l| count(Some(l))),
                    event,
                    numwant: numwant.filter(|&n| n > 0),
                    key: None,
                },
                offers,
                answer,
                answer_only,
            })))
        }
        _ => Err(err("invalid action", None, None)),
    }
}

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

// ---- client side ----

#[derive(Serialize)]
struct OfferOut<'a> {
    offer: &'a RawValue,
    offer_id: String,
}

#[derive(Serialize)]
struct AnnounceOut<'a> {
    action: &'static str,
    info_hash: String,
    peer_id: String,
    numwant: u32,
    uploaded: u64,
    downloaded: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    offers: Vec<OfferOut<'a>>,
}

#[derive(Serialize)]
struct AnswerOut<'a> {
    action: &'static str,
    info_hash: String,
    peer_id: String,
    to_peer_id: String,
    offer_id: String,
    answer: &'a RawValue,
}

impl WsRequest {
    /// The message as a client sends it. An announce is `{action:"announce",
    /// info_hash, peer_id, numwant, uploaded, downloaded, left, event,
    /// offers}`; an answer alone is `{action:"announce", info_hash, peer_id,
    /// to_peer_id, offer_id, answer}` (as WebTorrent sends it); a scrape
    /// names one hash or a list.
    pub fn to_json(&self) -> String {
        let a = match self {
            WsRequest::Scrape(hashes) => {
                let list: Vec<String> = hashes.iter().map(|h| to_binary(&h.0)).collect();
                let v = match list.as_slice() {
                    [one] => serde_json::json!({"action": "scrape", "info_hash": one}),
                    _ => serde_json::json!({"action": "scrape", "info_hash": list}),
                };
                return v.to_string();
            }
            WsRequest::Announce(a) => a,
        };
        let r = &a.request;
        if let (true, Some(ans)) = (a.answer_only, &a.answer) {
            return serde_json::to_string(&AnswerOut {
                action: "announce",
                info_hash: to_binary(&r.info_hash.0),
                peer_id: to_binary(&r.peer_id.0),
                to_peer_id: to_binary(&ans.to_peer_id.0),
                offer_id: to_binary(&ans.offer_id),
                answer: &ans.answer,
            })
            .expect("plain data serializes");
        }
        serde_json::to_string(&AnnounceOut {
            action: "announce",
            info_hash: to_binary(&r.info_hash.0),
            peer_id: to_binary(&r.peer_id.0),
            numwant: r.numwant.unwrap_or(a.offers.len() as u32),
            uploaded: r.uploaded,
            downloaded: r.downloaded,
            left: r.left,
            event: match r.event {
                Event::None => None,
                e => Some(e.as_str()),
            },
            offers: a
                .offers
                .iter()
                .map(|o| OfferOut {
                    offer: &o.offer,
                    offer_id: to_binary(&o.offer_id),
                })
                .collect(),
        })
        .expect("plain data serializes")
    }
}

impl WsAnnounce {
    /// An announce with `offers` (WebSocket peers have no port).
    pub fn new(request: AnnounceRequest, offers: Vec<Offer>) -> WsAnnounce {
        WsAnnounce {
            request,
            offers,
            answer: None,
            answer_only: false,
        }
    }

    /// `peer_id`'s answer, in swarm `info_hash`, to the offer `offer_id`
    /// that `to_peer_id` made.
    pub fn answer(
        info_hash: InfoHash,
        peer_id: PeerId,
        to_peer_id: PeerId,
        offer_id: [u8; 20],
        answer: Box<RawValue>,
    ) -> WsAnnounce {
        WsAnnounce {
            request: AnnounceRequest {
                info_hash,
                peer_id,
                port: 0,
                uploaded: 0,
                downloaded: 0,
                left: None,
                event: Event::None,
                numwant: None,
                key: None,
            },
            offers: Vec::new(),
            answer: Some(Answer {
                to_peer_id,
                offer_id,
                answer,
            }),
            answer_only: true,
        }
    }
}

/// A message a WebSocket tracker sends to a client.
#[derive(Clone, Debug)]
pub enum ServerMessage {
    /// The reply to an announce.
    Announce {
        info_hash: InfoHash,
        interval: Option<u32>,
        complete: u32,
        incomplete: u32,
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
                complete: small(m.complete),
                incomplete: small(m.incomplete),
            })
        }
        _ => Err("a message with no known action".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HASH: &str = "\u{0}\u{1}\u{ff}\u{80} \"\\abcdefghijklm";

    fn announce(text: &str) -> WsAnnounce {
        match parse(text).unwrap() {
            WsRequest::Announce(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binary_strings() {
        let b = binary20(HASH).unwrap();
        assert_eq!(&b[..4], &[0, 1, 0xff, 0x80]);
        assert_eq!(to_binary(&b), HASH);
        assert!(binary20("short").is_none());
        assert!(
            binary20("\u{100}bcdefghijklmnopqrst").is_none(),
            "above U+00FF"
        );
        assert!(binary20("abcdefghijklmnopqrstu").is_none());
    }

    #[test]
    fn parses_a_webtorrent_announce_with_offers() {
        let msg = serde_json::json!({
            "action": "announce", "info_hash": HASH, "peer_id": "-WW0207-abcdefghijkl",
            "numwant": 2, "uploaded": 0, "downloaded": 10, "left": 0, "event": "started",
            "offers": [{"offer": {"type": "offer", "sdp": "v=0..."}, "offer_id": "oooooooooooooooooooo"}]
        });
        let a = announce(&msg.to_string());
        assert_eq!(a.request.info_hash.0, binary20(HASH).unwrap());
        assert_eq!(
            (a.request.event, a.request.left, a.request.numwant),
            (Event::Started, Some(0), Some(2))
        );
        assert_eq!(a.offers.len(), 1);
        let offer: serde_json::Value = serde_json::from_str(a.offers[0].offer.get()).unwrap();
        assert_eq!(offer, serde_json::json!({"type": "offer", "sdp": "v=0..."}));
        assert!(!a.answer_only);
        let out = offer_message(&a.request.info_hash, &a.request.peer_id, &a.offers[0]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["offer"]["sdp"], "v=0...");
        assert_eq!(v["info_hash"], HASH);
        assert_eq!(v["peer_id"], "-WW0207-abcdefghijkl");
        assert_eq!(v["offer_id"], "oooooooooooooooooooo");
        assert!(v.get("answer").is_none());
    }

    #[test]
    fn answers() {
        let msg = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb",
            "to_peer_id":"cccccccccccccccccccc","answer":{"type":"answer","sdp":"x"},"offer_id":"dddddddddddddddddddd"}"#;
        let a = announce(msg);
        assert!(a.answer_only);
        let ans = a.answer.unwrap();
        assert_eq!(ans.to_peer_id.0, [b'c'; 20]);
        let e = parse(
            r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","answer":{}}"#,
        );
        assert_eq!(e.unwrap_err().reason, "missing to_peer_id for answer");
    }

    #[test]
    fn scrape_forms() {
        let hashes = |t: &str| match parse(t).unwrap() {
            WsRequest::Scrape(h) => h.len(),
            _ => panic!(),
        };
        assert_eq!(hashes(r#"{"action":"scrape"}"#), 0);
        assert_eq!(
            hashes(r#"{"action":"scrape","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#),
            1
        );
        assert_eq!(
            hashes(
                r#"{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbb"]}"#
            ),
            2
        );
        let s = ScrapeStats {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        assert_eq!(
            scrape_reply(&[(InfoHash([b'a'; 20]), s)]),
            r#"{"action":"scrape","files":{"aaaaaaaaaaaaaaaaaaaa":{"complete":1,"incomplete":2,"downloaded":3}}}"#
        );
    }

    #[test]
    fn offers_that_are_not_a_list_are_ignored() {
        for offers in [r#"{}"#, r#""x""#, "5", "null", "true", r#"{"offer":1}"#] {
            let text = format!(
                r#"{{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","left":0,"offers": {offers}}}"#
            );
            let Ok(WsRequest::Announce(a)) = parse(&text) else {
                panic!("{text}: the announce stands");
            };
            assert!(a.offers.is_empty() && a.request.left == Some(0), "{text}");
        }
        // A list of something else than offers is an error that says so.
        let text = r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","offers":[1]}"#;
        assert_eq!(parse(text).unwrap_err().reason, "invalid offers");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |t: &str| parse(t).unwrap_err().reason;
        assert_eq!(reason("{"), "invalid JSON message");
        assert_eq!(reason("[1,2]"), "invalid JSON message");
        assert_eq!(reason(r#"{"action":"dance"}"#), "invalid action");
        assert_eq!(reason(r#"{"action":"announce"}"#), "missing info_hash");
        assert_eq!(
            reason(r#"{"action":"announce","info_hash":"x"}"#),
            "invalid info_hash"
        );
        assert_eq!(
            reason(r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#),
            "missing peer_id"
        );
        assert_eq!(
            reason(
                r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"bbbbbbbbbbbbbbbbbbbb","event":"x"}"#
            ),
            "invalid event"
        );
        assert_eq!(
            reason(r#"{"action":"scrape","info_hash":["short"]}"#),
            "invalid info_hash"
        );
        let e = parse(r#"{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#).unwrap_err();
        assert_eq!(
            error_reply(&e),
            r#"{"failure reason":"missing peer_id","action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa"}"#
        );
        assert_eq!(
            announce_reply(
                &InfoHash([b'a'; 20]),
                120,
                &ScrapeStats {
                    complete: 1,
                    incomplete: 0,
                    downloaded: 0
                }
            ),
            r#"{"action":"announce","interval":120,"info_hash":"aaaaaaaaaaaaaaaaaaaa","complete":1,"incomplete":0}"#
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&String::from_utf8_lossy(&b));
        }

        #[test]
        fn any_hash_round_trips_through_json(h in any::<[u8; 20]>(), p in any::<[u8; 20]>()) {
            let msg = serde_json::json!({"action": "announce", "info_hash": to_binary(&h), "peer_id": to_binary(&p)});
            let a = match parse(&msg.to_string()).unwrap() { WsRequest::Announce(a) => a, _ => unreachable!() };
            prop_assert_eq!(a.request.info_hash.0, h);
            prop_assert_eq!(a.request.peer_id.0, p);
        }
    }

    #[test]
    fn client_messages_round_trip_through_the_server_codec() {
        let a = AnnounceRequest {
            info_hash: InfoHash([0xff; 20]),
            peer_id: PeerId(*b"-WW0109-abcdefghijkl"),
            port: 0,
            uploaded: 1,
            downloaded: 2,
            left: Some(3),
            event: Event::Started,
            numwant: Some(5),
            key: None,
        };
        let offers = vec![Offer {
            offer_id: [b'o'; 20],
            offer: RawValue::from_string(r#"{"type":"offer","sdp":"x"}"#.into()).unwrap(),
        }];
        let sent = WsRequest::Announce(Box::new(WsAnnounce::new(a.clone(), offers)));
        let WsRequest::Announce(got) = parse(&sent.to_json()).unwrap() else {
            panic!("an announce");
        };
        assert_eq!(got.request.info_hash, a.info_hash);
        assert_eq!(got.request.left, Some(3));
        assert_eq!(got.request.event, Event::Started);
        assert_eq!(got.offers.len(), 1);
        assert_eq!(got.offers[0].offer_id, [b'o'; 20]);
        let hashes = vec![InfoHash([1; 20]), InfoHash([2; 20])];
        let WsRequest::Scrape(h) = parse(&WsRequest::Scrape(hashes.clone()).to_json()).unwrap()
        else {
            panic!("a scrape");
        };
        assert_eq!(h, hashes);
        // An answer alone, as WebTorrent sends it.
        let ans = WsAnnounce::answer(
            a.info_hash,
            a.peer_id,
            PeerId([4; 20]),
            [b'o'; 20],
            RawValue::from_string(r#"{"type":"answer","sdp":"y"}"#.into()).unwrap(),
        );
        let WsRequest::Announce(got) =
            parse(&WsRequest::Announce(Box::new(ans)).to_json()).unwrap()
        else {
            panic!("an announce");
        };
        assert!(got.answer_only && got.request.left.is_none());
        let answer = got.answer.unwrap();
        assert_eq!(
            (answer.to_peer_id, answer.offer_id),
            (PeerId([4; 20]), [b'o'; 20])
        );
    }

    #[test]
    fn server_messages_as_a_client_reads_them() {
        let h = InfoHash([7; 20]);
        let s = ScrapeStats {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        match parse_server_message(&announce_reply(&h, 120, &s)).unwrap() {
            ServerMessage::Announce {
                info_hash,
                interval,
                complete,
                incomplete,
            } => {
                assert_eq!(
                    (info_hash, interval, complete, incomplete),
                    (h, Some(120), 1, 2)
                )
            }
            other => panic!("{other:?}"),
        }
        match parse_server_message(&scrape_reply(&[(h, s)])).unwrap() {
            ServerMessage::Scrape(v) => assert_eq!(v, vec![(h, s)]),
            other => panic!("{other:?}"),
        }
        let o = Offer {
            offer_id: [9; 20],
            offer: RawValue::from_string("{\"sdp\":\"v=0\"}".into()).unwrap(),
        };
        let sent = offer_message(&h, &PeerId([3; 20]), &o);
        match parse_server_message(&sent).unwrap() {
            ServerMessage::Relayed(r) => {
                assert_eq!((r.peer_id, r.offer_id), (PeerId([3; 20]), [9; 20]));
                assert_eq!(r.sdp, Sdp::Offer(o.offer.clone()));
                assert_eq!(r.to_json(), sent, "one shape, written alike");
            }
            other => panic!("{other:?}"),
        }
        match parse_server_message(&refusal_reply("no", "announce", Some(&h))).unwrap() {
            ServerMessage::Failure { reason, info_hash } => {
                assert_eq!((reason.as_str(), info_hash), ("no", Some(h)))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_server_message("[]").is_err());
        assert!(parse_server_message("{\"action\":\"announce\"}").is_err());
    }

    proptest! {
        #[test]
        fn any_text_is_a_message_or_an_error(t in ".{0,300}") {
            let _ = parse_server_message(&t);
        }
    }
}
