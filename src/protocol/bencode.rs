//! Bencode: a writer that appends to a byte buffer (the server's replies) and
//! a bounded reader (the client's and the tests' view of replies).

/// Appends `i<n>e`.
#[inline]
pub fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
#[inline]
pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Appends a whole `d14:failure reason<len>:<text>e`.
pub fn failure(out: &mut Vec<u8>, reason: &str) {
    out.extend_from_slice(b"d14:failure reason");
    bytes(out, reason.as_bytes());
    out.push(b'e');
}

/// A decoded bencode value borrowing from its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in input order (a valid encoding has them sorted).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// Looks a key up in a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Encodes this value again (dictionary keys in the order held).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => int(out, *i),
            Value::Bytes(b) => bytes(out, b),
            Value::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Why a bencode input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnexpectedEnd,
    InvalidByte(usize),
    InvalidInteger(usize),
    InvalidLength(usize),
    TooDeep,
    TrailingBytes(usize),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnexpectedEnd => write!(f, "bencode: unexpected end of input"),
            DecodeError::InvalidByte(p) => write!(f, "bencode: unexpected byte at {p}"),
            DecodeError::InvalidInteger(p) => write!(f, "bencode: invalid integer at {p}"),
            DecodeError::InvalidLength(p) => write!(f, "bencode: invalid string length at {p}"),
            DecodeError::TooDeep => write!(f, "bencode: nesting too deep"),
            DecodeError::TrailingBytes(p) => write!(f, "bencode: trailing bytes at {p}"),
        }
    }
}
impl std::error::Error for DecodeError {}

/// Nesting limit: deep enough for any tracker reply, shallow enough that hostile
/// input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// Decodes exactly one value spanning the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut pos = 0;
    let v = decode_at(input, &mut pos, 0)?;
    if pos != input.len() {
        return Err(DecodeError::TrailingBytes(pos));
    }
    Ok(v)
}

fn decode_at<'a>(input: &'a [u8], pos: &mut usize, depth: usize) -> Result<Value<'a>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let start = *pos;
    match input.get(start).copied() {
        None => Err(DecodeError::UnexpectedEnd),
        Some(b'i') => {
            let end = find(input, start + 1, b'e')?;
            let digits = &input[start + 1..end];
            let n = parse_int(digits).ok_or(DecodeError::InvalidInteger(start))?;
            *pos = end + 1;
            Ok(Value::Int(n))
        }
        Some(b'l') => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                match input.get(*pos) {
                    None => return Err(DecodeError::UnexpectedEnd),
                    Some(b'e') => {
                        *pos += 1;
                        return Ok(Value::List(items));
                    }
                    Some(_) => items.push(decode_at(input, pos, depth + 1)?),
                }
            }
        }
        Some(b'd') => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                match input.get(*pos) {
                    None => return Err(DecodeError::UnexpectedEnd),
                    Some(b'e') => {
                        *pos += 1;
                        return Ok(Value::Dict(items));
                    }
                    Some(b'0'..=b'9') => {
                        let key = decode_bytes(input, pos)?;
                        let value = decode_at(input, pos, depth + 1)?;
                        items.push((key, value));
                    }
                    Some(_) => return Err(DecodeError::InvalidByte(*pos)),
                }
            }
        }
        Some(b'0'..=b'9') => decode_bytes(input, pos).map(Value::Bytes),
        Some(_) => Err(DecodeError::InvalidByte(start)),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> Result<usize, DecodeError> {
    input[from.min(input.len())..]
        .iter()
        .position(|&b| b == byte)
        .map(|i| from + i)
        .ok_or(DecodeError::UnexpectedEnd)
}

fn decode_bytes<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], DecodeError> {
    let start = *pos;
    let colon = find(input, start, b':')?;
    let len_digits = &input[start..colon];
    if len_digits.is_empty()
        || len_digits.len() > 10
        || (len_digits.len() > 1 && len_digits[0] == b'0')
        || !len_digits.iter().all(u8::is_ascii_digit)
    {
        return Err(DecodeError::InvalidLength(start));
    }
    let len: usize = std::str::from_utf8(len_digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::InvalidLength(start))?;
    let begin = colon + 1;
    let end = begin
        .checked_add(len)
        .ok_or(DecodeError::InvalidLength(start))?;
    if end > input.len() {
        return Err(DecodeError::UnexpectedEnd);
    }
    *pos = end;
    Ok(&input[begin..end])
}

fn parse_int(digits: &[u8]) -> Option<i64> {
    let (neg, body) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() || !body.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // No leading zeros, no negative zero.
    if (body.len() > 1 && body[0] == b'0') || (neg && body == b"0") {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn writes_and_reads() {
        let mut out = Vec::new();
        out.push(b'd');
        bytes(&mut out, b"a");
        int(&mut out, -42);
        bytes(&mut out, b"b");
        bytes(&mut out, b"xy:z");
        out.push(b'e');
        assert_eq!(out, b"d1:ai-42e1:b4:xy:ze");
        let v = decode(&out).unwrap();
        assert_eq!(v.get(b"a").unwrap().as_int(), Some(-42));
        assert_eq!(v.get(b"b").unwrap().as_bytes(), Some(&b"xy:z"[..]));
    }

    #[test]
    fn failure_reason_bytes() {
        let mut out = Vec::new();
        failure(&mut out, "invalid port");
        assert_eq!(out, b"d14:failure reason12:invalid porte");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(decode(b""), Err(DecodeError::UnexpectedEnd));
        assert_eq!(decode(b"i01e"), Err(DecodeError::InvalidInteger(0)));
        assert_eq!(decode(b"i-0e"), Err(DecodeError::InvalidInteger(0)));
        assert_eq!(decode(b"ie"), Err(DecodeError::InvalidInteger(0)));
        assert_eq!(decode(b"5:abc"), Err(DecodeError::UnexpectedEnd));
        assert_eq!(decode(b"99999999999:a"), Err(DecodeError::InvalidLength(0)));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::TrailingBytes(3)));
        assert_eq!(decode(b"di1ei2ee"), Err(DecodeError::InvalidByte(1)));
        let deep = "l".repeat(100_000);
        assert_eq!(decode(deep.as_bytes()), Err(DecodeError::TooDeep));
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        // Builds encodings of arbitrary values, then checks the decoder's round-trip.
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| {
                let mut o = Vec::new();
                int(&mut o, i);
                o
            }),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
                let mut o = Vec::new();
                bytes(&mut o, &b);
                o
            }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(|items| {
                    let mut o = vec![b'l'];
                    items.iter().for_each(|i| o.extend_from_slice(i));
                    o.push(b'e');
                    o
                }),
                proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..8), inner),
                    0..8
                )
                .prop_map(|items| {
                    let mut o = vec![b'd'];
                    for (k, v) in items {
                        bytes(&mut o, &k);
                        o.extend_from_slice(&v);
                    }
                    o.push(b'e');
                    o
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(enc in value()) {
            let v = decode(&enc).unwrap();
            let mut again = Vec::new();
            v.encode(&mut again);
            prop_assert_eq!(again, enc);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&data);
        }

        #[test]
        fn bencode_alphabet_never_panics(data in proptest::collection::vec(
            prop_oneof![Just(b'i'), Just(b'l'), Just(b'd'), Just(b'e'), Just(b':'), Just(b'-'), b'0'..=b'9'], 0..128)) {
            let _ = decode(&data);
        }
    }
}
