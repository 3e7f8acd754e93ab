//! What a WebSocket client sends the tracker: announces (with WebRTC
//! offers, or an answer alone) and scrapes. The tracker parses them
//! ([`parse`]); a client writes them ([`WsRequest::to_json`]).

use super::binary::{binary20, count, to_binary};
use crate::protocol::{AnnounceRequest, Event, InfoHash, PeerId};
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
    #[serde(default, deserialize_with = "offers_if_a_list")]
    offers: Vec<RawOffer>,
    answer: Option<Box<RawValue>>,
    to_peer_id: Option<String>,
    offer_id: Option<String>,
}

/// `offers`: a list of offers, read in the same pass as the message; any
/// other value (an object, a string, null) is skipped and reads as none. A
/// list whose entries are not offers makes the message invalid.
fn offers_if_a_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RawOffer>, D::Error> {
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
    struct Offers;
    impl<'de> Visitor<'de> for Offers {
        type Value = Vec<RawOffer>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of offers, or anything else to ignore")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<RawOffer>::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(Offers)
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
            let offers = raw
                .offers
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
    /// An answer sent along with an announce.
    #[serde(skip_serializing_if = "Option::is_none")]
    to_peer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a RawValue>,
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
            to_peer_id: a.answer.as_ref().map(|x| to_binary(&x.to_peer_id.0)),
            offer_id: a.answer.as_ref().map(|x| to_binary(&x.offer_id)),
            answer: a.answer.as_ref().map(|x| &*x.answer),
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
            request: AnnounceRequest::new(info_hash, peer_id),
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
