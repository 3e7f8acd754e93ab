//! WebSocket frames as the tracker reads and writes them (RFC 6455 §5):
//! frames from clients, masked, read in place from the bytes a connection
//! received; frames to clients, unmasked, written straight into its output.
//! A message is read with no copy when it comes in one frame (browsers send
//! it so), and a relayed offer is written in one copy. Property tests hold
//! it to tungstenite, on both sides.

/// Opcodes (§5.2).
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Status codes of a close frame (§7.4.1).
pub const CLOSE_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Appends one final, unmasked frame of `opcode` carrying `payload`.
fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let n = payload.len();
    out.reserve(n + 10);
    out.push(0x80 | opcode);
    if n < 126 {
        out.push(n as u8);
    } else if n <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends `text` to `out` as one final, unmasked text frame.
pub fn write_text_frame(out: &mut Vec<u8>, text: &[u8]) {
    write_frame(out, TEXT, text);
}

/// Appends a ping with no payload.
pub fn write_ping(out: &mut Vec<u8>) {
    write_frame(out, PING, &[]);
}

/// Appends the pong that answers a ping carrying `payload`.
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(out, PONG, payload);
}

/// Appends a close frame with `code` and `reason` (cut to fit the 125
/// bytes of a control frame), or an empty one for `None`.
pub fn write_close(out: &mut Vec<u8>, close: Option<(u16, &str)>) {
    let mut payload = Vec::new();
    if let Some((code, reason)) = close {
        payload.extend_from_slice(&code.to_be_bytes());
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
    }
    write_frame(out, CLOSE, &payload);
}

/// A message read from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Text(&'a str),
    /// A binary message (its bytes are not kept: the tracker refuses them).
    Binary,
    /// A ping, to be answered with a pong of its payload.
    Ping(&'a [u8]),
    Pong,
    /// The client closes, with its status code if it gave one.
    Close(Option<u16>),
}

/// Why a client's bytes cannot be read on: the connection is closed with
/// [`FrameError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A message larger than the limit.
    TooBig,
    /// A text message that is not UTF-8.
    NotUtf8,
    /// Not a WebSocket stream from a client: what is wrong.
    Protocol(&'static str),
}

impl FrameError {
    pub fn close_code(self) -> u16 {
        match self {
            FrameError::TooBig => CLOSE_TOO_BIG,
            FrameError::NotUtf8 => CLOSE_INVALID_DATA,
            FrameError::Protocol(_) => CLOSE_PROTOCOL,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            FrameError::TooBig => "message too big",
            FrameError::NotUtf8 => "text is not UTF-8",
            FrameError::Protocol(why) => why,
        }
    }
}

/// XORs `payload` with the 4-byte `mask`, from the payload's first byte.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// What a connection keeps between its reads: the message that arrives
/// in fragments, while it does.
#[derive(Default)]
pub struct FrameReader {
    /// The fragments so far, unmasked.
    partial: Vec<u8>,
    /// Whether a fragmented message is under way, and if it is text.
    fragmented: Option<bool>,
    /// `partial` was handed out whole: it is emptied at the next call.
    delivered: bool,
}

/// Where the next message lies, found before it is borrowed.
enum Found {
    Data {
        text: bool,
        start: usize,
        end: usize,
    },
    Partial {
        text: bool,
    },
    Ping {
        start: usize,
        end: usize,
    },
    Pong,
    Close(Option<u16>),
}

impl FrameReader {
    /// Reads the next message from `buf[*pos..]`, unmasking in place, and
    /// moves `pos` past the frames it took. `Ok(None)`: the bytes end
    /// before the next message does. A message (or a frame) over `max`
    /// bytes is refused from its header, before its payload is waited for.
    pub fn next<'a>(
        &'a mut self,
        buf: &'a mut [u8],
        pos: &mut usize,
        max: usize,
    ) -> Result<Option<Incoming<'a>>, FrameError> {
        if self.delivered {
            // What a fragmented message grew to is not kept after it.
            self.partial = Vec::new();
            self.delivered = false;
        }
        let found = loop {
            let b = &buf[*pos..];
            if b.len() < 2 {
                return Ok(None);
            }
            let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0f);
            if b[0] & 0x70 != 0 {
                return Err(FrameError::Protocol("reserved bits set"));
            }
            if b[1] & 0x80 == 0 {
                return Err(FrameError::Protocol("unmasked frame from a client"));
            }
            let (len, at) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
                127 if b.len() >= 10 => {
                    let n = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
                    if n >> 63 != 0 {
                        return Err(FrameError::Protocol("frame length over 2^63"));
                    }
                    (n, 10)
                }
                126 | 127 => return Ok(None),
                n => (n as u64, 2),
            };
            let control = opcode & 0x8 != 0;
            match opcode {
                CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG => {}
                _ => return Err(FrameError::Protocol("unknown opcode")),
            }
            if control && (!fin || len > 125) {
                return Err(FrameError::Protocol("control frame fragmented or too long"));
            }
            let so_far = if opcode == CONTINUATION {
                self.partial.len() as u64
            } else {
                0
            };
            if !control && len.saturating_add(so_far) > max as u64 {
                return Err(FrameError::TooBig);
            }
            let (len, at) = (len as usize, at + 4);
            if b.len() < at + len {
                return Ok(None);
            }
            let mask = [b[at - 4], b[at - 3], b[at - 2], b[at - 1]];
            let (start, end) = (*pos + at, *pos + at + len);
            unmask(&mut buf[start..end], mask);
            *pos = end;
            match opcode {
                TEXT | BINARY if self.fragmented.is_some() => {
                    return Err(FrameError::Protocol(
                        "a new message inside a fragmented one",
                    ))
                }
                TEXT | BINARY if fin => {
                    break Found::Data {
                        text: opcode == TEXT,
                        start,
                        end,
                    }
                }
                TEXT | BINARY => {
                    self.fragmented = Some(opcode == TEXT);
                    self.partial.extend_from_slice(&buf[start..end]);
                }
                CONTINUATION => {
                    let Some(text) = self.fragmented else {
                        return Err(FrameError::Protocol("continuation without a message"));
                    };
                    self.partial.extend_from_slice(&buf[start..end]);
                    if fin {
                        self.fragmented = None;
                        self.delivered = true;
                        break Found::Partial { text };
                    }
                }
                CLOSE => {
                    break match len {
                        0 => Found::Close(None),
                        1 => return Err(FrameError::Protocol("close frame of one byte")),
                        _ => Found::Close(Some(u16::from_be_bytes([buf[start], buf[start + 1]]))),
                    }
                }
                PING => break Found::Ping { start, end },
                _ => break Found::Pong,
            }
        };
        let buf: &'a [u8] = buf;
        let data = |text: bool, bytes: &'a [u8]| {
            if !text {
                return Ok(Some(Incoming::Binary));
            }
            std::str::from_utf8(bytes)
                .map(|t| Some(Incoming::Text(t)))
                .map_err(|_| FrameError::NotUtf8)
        };
        match found {
            Found::Data { text, start, end } => data(text, &buf[start..end]),
            Found::Partial { text } => data(text, &self.partial),
            Found::Ping { start, end } => Ok(Some(Incoming::Ping(&buf[start..end]))),
            Found::Pong => Ok(Some(Incoming::Pong)),
            Found::Close(code) => Ok(Some(Incoming::Close(code))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tungstenite::protocol::{Role, WebSocket};
    use tungstenite::Message;

    /// What a client reading `bytes` receives, through tungstenite.
    fn received(bytes: Vec<u8>) -> Vec<String> {
        let mut ws = WebSocket::from_raw_socket(std::io::Cursor::new(bytes), Role::Client, None);
        let mut out = Vec::new();
        while let Ok(m) = ws.read() {
            match m {
                Message::Text(t) => out.push(t.to_string()),
                other => panic!("not a text message: {other:?}"),
            }
        }
        out
    }

    /// A masked client frame, by hand: for frames tungstenite will not make.
    fn raw(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        let n = payload.len();
        if n < 126 {
            f.push(0x80 | n as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        let mask = [1, 2, 3, 4];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn what_a_client_may_not_send_is_refused() {
        let read = |bytes: Vec<u8>, max| read_all(&bytes, &[], max);
        // Unmasked.
        assert_eq!(
            read(vec![0x81, 0x02, b'h', b'i'], 100),
            Err(FrameError::Protocol("unmasked frame from a client"))
        );
        // Reserved bits, unknown opcode.
        assert_eq!(
            read(raw(0xC1, b"hi"), 100),
            Err(FrameError::Protocol("reserved bits set"))
        );
        assert_eq!(
            read(raw(0x83, b"hi"), 100),
            Err(FrameError::Protocol("unknown opcode"))
        );
        // Control frames: fragmented, or over 125 bytes.
        assert!(matches!(
            read(raw(0x09, b""), 100),
            Err(FrameError::Protocol(_))
        ));
        assert!(matches!(
            read(raw(0x89, &[0; 126]), 1000),
            Err(FrameError::Protocol(_))
        ));
        // Continuation with nothing to continue; a message inside a fragmented one.
        assert!(matches!(
            read(raw(0x80, b"x"), 100),
            Err(FrameError::Protocol(_))
        ));
        let mut b = raw(0x01, b"a");
        b.extend(raw(0x81, b"b"));
        assert!(matches!(read(b, 100), Err(FrameError::Protocol(_))));
        // Not UTF-8, whole or in fragments (a character cut between them is fine).
        assert_eq!(
            read(raw(0x81, &[0xff, 0xfe]), 100),
            Err(FrameError::NotUtf8)
        );
        let mut b = raw(0x01, &"é".as_bytes()[..1]);
        b.extend(raw(0x80, &"é".as_bytes()[1..]));
        assert_eq!(read(b, 100), Ok(vec![Msg::Text("é".into())]));
        // Too big: refused from the header, before the payload comes, and
        // counted over the fragments.
        let big = raw(0x81, &[b'x'; 300]);
        assert_eq!(read_all(&big[..8], &[], 299), Err(FrameError::TooBig));
        assert_eq!(read(big.clone(), 300), Ok(vec![Msg::Text("x".repeat(300))]));
        let mut b = raw(0x01, &[b'x'; 200]);
        b.extend(raw(0x80, &[b'x'; 200]));
        assert_eq!(read(b, 300), Err(FrameError::TooBig));
        // A close of one byte.
        assert!(matches!(
            read(raw(0x88, b"x"), 100),
            Err(FrameError::Protocol(_))
        ));
        // A length over 2^63.
        let mut b = vec![0x81, 0xff];
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(read(b, 100), Err(FrameError::Protocol(_))));
    }

    #[test]
    fn unmasking_matches_the_plain_loop() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, [0xde, 0xad, 0xbe, 0xef]);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [0xde, 0xad, 0xbe, 0xef][i % 4])
                .collect();
            assert_eq!(fast, slow, "{n} bytes");
        }
    }

    #[test]
    fn control_frames_as_a_client_reads_them() {
        let mut out = Vec::new();
        write_ping(&mut out);
        write_pong(&mut out, b"abc");
        write_close(&mut out, Some((CLOSE_TOO_BIG, &"é".repeat(100))));
        write_close(&mut out, None);
        let mut ws = WebSocket::from_raw_socket(std::io::Cursor::new(out), Role::Client, None);
        assert!(matches!(ws.read().unwrap(), Message::Ping(p) if p.is_empty()));
        assert!(matches!(ws.read().unwrap(), Message::Pong(p) if &p[..] == b"abc"));
        match ws.read().unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 1009);
                assert_eq!(f.reason.len(), 122, "cut to 125 bytes, on a character");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lengths_at_each_encoding_boundary() {
        for n in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let text = "x".repeat(n);
            let mut out = Vec::new();
            write_text_frame(&mut out, text.as_bytes());
            let header = match n {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(out.len(), header + n, "{n} bytes");
            assert_eq!(received(out), vec![text]);
        }
    }

    /// A message as a test keeps it.
    #[derive(Debug, Clone, PartialEq)]
    enum Msg {
        Text(String),
        Binary,
        Ping(Vec<u8>),
        Pong,
        Close(Option<u16>),
    }

    /// `msgs` as a client sends them (through tungstenite), the data
    /// messages cut into `pieces` fragments each.
    fn client_bytes(msgs: &[(Msg, usize)]) -> Vec<u8> {
        use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
        use tungstenite::protocol::frame::Frame;
        let mut out = Vec::new();
        for (m, pieces) in msgs {
            let mut frames = Vec::new();
            match m {
                Msg::Text(_) | Msg::Binary if *pieces > 1 => {
                    let (bytes, op) = match m {
                        Msg::Text(t) => (t.as_bytes().to_vec(), Data::Text),
                        _ => (vec![7u8; 40], Data::Binary),
                    };
                    let step = bytes.len().div_ceil(*pieces).max(1);
                    let parts: Vec<&[u8]> = bytes.chunks(step).collect();
                    for (i, part) in parts.iter().enumerate() {
                        let op = if i == 0 {
                            OpCode::Data(op)
                        } else {
                            OpCode::Data(Data::Continue)
                        };
                        frames.push(Frame::message(part.to_vec(), op, i + 1 == parts.len()));
                    }
                    if parts.is_empty() {
                        frames.push(Frame::message(Vec::new(), OpCode::Data(op), true));
                    }
                }
                Msg::Text(t) => {
                    frames.push(Frame::message(t.clone(), OpCode::Data(Data::Text), true))
                }
                Msg::Binary => frames.push(Frame::message(
                    vec![7u8; 40],
                    OpCode::Data(Data::Binary),
                    true,
                )),
                Msg::Ping(p) => frames.push(Frame::ping(p.clone())),
                Msg::Pong => frames.push(Frame::pong(Vec::new())),
                Msg::Close(c) => {
                    frames.push(Frame::close(c.map(|c| tungstenite::protocol::CloseFrame {
                        code: CloseCode::from(c),
                        reason: "bye".into(),
                    })))
                }
            }
            for (i, mut f) in frames.into_iter().enumerate() {
                f.header_mut().mask = Some([0x5a, i as u8, 0xa5, out.len() as u8]);
                f.format(&mut out).unwrap();
            }
        }
        out
    }

    /// Reads `bytes` arriving in `cuts` pieces, as a connection does.
    fn read_all(bytes: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Msg>, FrameError> {
        let mut r = FrameReader::default();
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        let mut at = 0;
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        ends.push(bytes.len());
        ends.sort_unstable();
        for end in ends {
            buf.extend_from_slice(&bytes[at..end.max(at)]);
            at = end.max(at);
            let mut pos = 0;
            while let Some(m) = r.next(&mut buf, &mut pos, max)? {
                got.push(match m {
                    Incoming::Text(t) => Msg::Text(t.to_string()),
                    Incoming::Binary => Msg::Binary,
                    Incoming::Ping(p) => Msg::Ping(p.to_vec()),
                    Incoming::Pong => Msg::Pong,
                    Incoming::Close(c) => Msg::Close(c),
                });
            }
            buf.drain(..pos);
        }
        Ok(got)
    }

    fn msg() -> impl Strategy<Value = (Msg, usize)> {
        let m = prop_oneof![
            4 => ".{0,300}".prop_map(Msg::Text),
            1 => Just(Msg::Binary),
            1 => proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Ping),
            1 => Just(Msg::Pong),
            1 => proptest::option::of(1000u16..1012).prop_map(Msg::Close),
        ];
        (m, 1usize..4)
    }

    proptest! {
        #[test]
        fn messages_read_back_however_the_bytes_arrive(
            msgs in proptest::collection::vec(msg(), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let bytes = client_bytes(&msgs);
            let want: Vec<Msg> = msgs.into_iter().map(|m| m.0).collect();
            prop_assert_eq!(read_all(&bytes, &cuts, 1 << 20), Ok(want));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000),
                                       cuts in proptest::collection::vec(any::<usize>(), 0..4),
                                       max in 0usize..3000) {
            let _ = read_all(&bytes, &cuts, max);
        }

        #[test]
        fn a_client_reads_back_every_message(texts in proptest::collection::vec(".{0,300}", 1..5)) {
            let mut out = Vec::new();
            for t in &texts {
                write_text_frame(&mut out, t.as_bytes());
            }
            prop_assert_eq!(received(out), texts);
        }
    }
}
