//! The one WebSocket frame the tracker writes itself (RFC 6455 §5.2): a
//! whole text message from server to client, unmasked. Everything else
//! (reading, control frames, closing) is tungstenite's; a relayed offer
//! written here goes out in one copy instead of three.

/// Appends `text` to `out` as one final, unmasked text frame.
pub fn write_text_frame(out: &mut Vec<u8>, text: &[u8]) {
    const FIN_TEXT: u8 = 0x81;
    let n = text.len();
    out.reserve(n + 10);
    out.push(FIN_TEXT);
    if n < 126 {
        out.push(n as u8);
    } else if n <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(text);
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

    proptest! {
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
