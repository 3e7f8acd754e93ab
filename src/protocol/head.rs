//! HTTP/1.x request heads and reply heads, sans-IO: what a request's
//! headers say about how to answer it, the status that refuses it, and the
//! bytes of a reply head. The server reads and writes; this decides.

use super::http as wire;
use std::net::IpAddr;

/// Largest request body accepted (and ignored: trackers take GETs).
pub const MAX_BODY: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;

/// Room for a request's headers, for `parse_with_uninit_headers`: left
/// uninitialised, since writing 64 empty headers (2 KiB) before every
/// request cost about 2% of the time of an HTTP announce.
pub type HeaderSlots<'b> = [std::mem::MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

/// Fresh [`HeaderSlots`].
#[inline]
pub fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS]
}

/// The statuses the tracker answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    HeaderFieldsTooLarge,
}

impl Status {
    /// The status line's code and reason: `404 Not Found`.
    pub fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::PayloadTooLarge => "413 Payload Too Large",
            Status::HeaderFieldsTooLarge => "431 Request Header Fields Too Large",
        }
    }

    pub fn code(self) -> u16 {
        self.line()[..3].parse().expect("three digits")
    }
}

/// What a request's headers say about how to handle it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub keep_alive: bool,
    pub http10: bool,
    /// Body bytes that follow the head (`Content-Length`).
    pub body: usize,
    /// The last `X-Forwarded-For` address, or `Err` when it is not one.
    pub forwarded: Option<Result<IpAddr, ()>>,
    /// `Upgrade: websocket`.
    pub websocket: bool,
    /// `Accept` names `application/json`.
    pub json: bool,
    /// `Accept-Encoding` names `gzip`.
    pub gzip: bool,
}

/// What the headers say, or the status that refuses the request.
pub fn inspect(req: &httparse::Request<'_, '_>) -> Result<Head, Status> {
    let http10 = req.version == Some(0);
    let mut head = Head {
        keep_alive: !http10,
        http10,
        body: 0,
        forwarded: None,
        websocket: false,
        json: false,
        gzip: false,
    };
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n: usize = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or(Status::BadRequest)?;
            if n > MAX_BODY {
                return Err(Status::PayloadTooLarge);
            }
            head.body = n;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(Status::BadRequest);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            head.websocket = h.value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case(b"accept") {
            head.json = h
                .value
                .windows(16)
                .any(|w| w.eq_ignore_ascii_case(b"application/json"));
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            head.gzip = h.value.split(|&b| b == b',').any(|t| {
                let mut parts = t.split(|&b| b == b';');
                let coding = parts.next().unwrap_or_default().trim_ascii();
                let refused = parts.any(|p| {
                    let p: Vec<u8> = p
                        .iter()
                        .filter(|b| !b.is_ascii_whitespace())
                        .copied()
                        .collect();
                    p == b"q=0" || p == b"q=0.0" || p == b"q=0.00" || p == b"q=0.000"
                });
                coding.eq_ignore_ascii_case(b"gzip") && !refused
            });
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            head.forwarded = Some(wire::forwarded_for(h.value).ok_or(()));
        }
    }
    Ok(head)
}

/// The pure part of reading one request: the head parsed and checked, and
/// the target's query read as an announce or a scrape. For the fuzzers;
/// returns the status the server would answer with (`None`: incomplete).
pub fn check_request(bytes: &[u8]) -> Option<Status> {
    let mut slots = header_slots();
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(bytes, &mut slots) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Status::BadRequest),
    }
    if let Err(status) = inspect(&req) {
        return Some(status);
    }
    let (path, query) = wire::split_target(req.path.unwrap_or("/").as_bytes());
    if path.starts_with(b"/scrape") {
        let mut hashes = Vec::new();
        let _ = wire::parse_scrape(query, 256, &mut hashes);
    } else {
        let _ = wire::parse_announce(query);
    }
    Some(Status::Ok)
}

/// Writes a reply head for a body of `len` bytes.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    len: usize,
    keep_alive: bool,
    http10: bool,
) {
    write_head_with(out, status, content_type, len, keep_alive, http10, &[]);
}

/// Writes a reply head for a body of `len` bytes, with `extra` headers.
pub fn write_head_with(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    len: usize,
    keep_alive: bool,
    http10: bool,
    extra: &[(&str, &str)],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.line().as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    if !keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    } else if http10 {
        out.extend_from_slice(b"\r\nConnection: keep-alive");
    }
    for (name, value) in extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// Writes a reply whose body is the status text.
pub fn write_status(out: &mut Vec<u8>, status: Status, keep_alive: bool, http10: bool) {
    let text = &status.line()[4..];
    write_head(
        out,
        status,
        "text/plain",
        text.len() + 1,
        keep_alive,
        http10,
    );
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Writes an error reply; the connection closes after it.
pub fn write_error(out: &mut Vec<u8>, status: Status) {
    write_status(out, status, false, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Status> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(text.as_bytes()).unwrap().is_complete());
        inspect(&req)
    }

    #[test]
    fn heads_say_how_to_answer() {
        let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\nAccept: text/html, application/json\r\n\r\n").unwrap();
        assert!(h.http10 && h.keep_alive && h.json && !h.websocket);
        let h = head("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\nUpgrade: WebSocket\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n\r\n").unwrap();
        assert!(!h.keep_alive && h.websocket);
        assert_eq!(h.forwarded, Some(Ok("192.0.2.7".parse().unwrap())));
        assert_eq!(
            head("GET / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"),
            Err(Status::PayloadTooLarge)
        );
        assert_eq!(
            head("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(Status::BadRequest)
        );
        assert_eq!(check_request(b"GET /announce?x HTTP/1.1\r\n"), None);
        assert_eq!(
            check_request(b"GET\x00 / HTTP/1.1\r\n\r\n"),
            Some(Status::BadRequest)
        );
    }

    #[test]
    fn gzip_is_offered_unless_refused() {
        let gz = |v: &str| {
            head(&format!("GET / HTTP/1.1\r\nAccept-Encoding: {v}\r\n\r\n"))
                .unwrap()
                .gzip
        };
        assert!(gz("deflate, gzip, br, zstd") && gz("GZIP;q=0.5"));
        assert!(!gz("gzip;q=0") && !gz("br") && !gz("x-gzip2"));
        let mut out = Vec::new();
        write_head_with(
            &mut out,
            Status::Ok,
            "text/plain",
            3,
            true,
            false,
            &[("Age", "7")],
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nAge: 7\r\n\r\n"
        );
    }

    #[test]
    fn status_replies() {
        let mut out = Vec::new();
        write_error(&mut out, Status::NotFound);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nNot Found\n"
        );
        assert_eq!(Status::HeaderFieldsTooLarge.code(), 431);
    }
}
