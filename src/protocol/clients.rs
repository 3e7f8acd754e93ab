//! Which client a peer runs, from its peer id: Azureus style (`-qB4650-`),
//! Shadow style (`S58B----`), Mainline (`M7-4-3--`) and the well-known
//! others (BitComet `exbc`, XBT, Tixati, aria2, Opera).
//!
//! [`ClientKey::of`] is what the tracker keeps per peer: it is cheap (a few
//! byte tests, no allocation) and names client and version exactly, so
//! counts can be kept per key as peers come and go. [`ClientKey::describe`]
//! turns a key into words only when statistics are asked for.

use super::PeerId;

/// The client and version bytes of a peer id, packed in a `u64`: the top
/// byte says which style, the rest are the bytes that name client and
/// version. Zero is an unknown client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClientKey(pub u64);

const AZUREUS: u8 = 1;
const SHADOW: u8 = 2;
const MAINLINE: u8 = 3;
const BITCOMET: u8 = 4;
const XBT: u8 = 5;
const TIXATI: u8 = 6;
const ARIA2: u8 = 7;
const OPERA: u8 = 8;

/// Azureus-style client codes and their names, sorted by code (byte order)
/// for a binary search: every announce looks its peer id's code up.
const AZUREUS_NAMES: &[(&[u8; 2], &str)] = &[
    (b"7T", "aTorrent"),
    (b"AB", "AnyEvent::BitTorrent"),
    (b"AG", "Ares"),
    (b"AR", "Arctic"),
    (b"AT", "Artemis"),
    (b"AV", "Avicora"),
    (b"AX", "BitPump"),
    (b"AZ", "Vuze"),
    (b"BB", "BitBuddy"),
    (b"BC", "BitComet"),
    (b"BE", "BitTorrent SDK"),
    (b"BF", "Bitflu"),
    (b"BG", "BTG"),
    (b"BI", "BiglyBT"),
    (b"BL", "BitBlinder"),
    (b"BP", "BitTorrent Pro"),
    (b"BR", "BitRocket"),
    (b"BS", "BTSlave"),
    (b"BT", "BitTorrent"),
    (b"BW", "BitWombat"),
    (b"BX", "BittorrentX"),
    (b"CD", "Enhanced CTorrent"),
    (b"CT", "CTorrent"),
    (b"DE", "Deluge"),
    (b"DP", "Propagate Data Client"),
    (b"EB", "EBit"),
    (b"ES", "electric sheep"),
    (b"FC", "FileCroc"),
    (b"FD", "Free Download Manager"),
    (b"FG", "FlashGet"),
    (b"FL", "Folx"),
    (b"FT", "FoxTorrent"),
    (b"FX", "Freebox BitTorrent"),
    (b"GS", "GSTorrent"),
    (b"HK", "Hekate"),
    (b"HL", "Halite"),
    (b"HM", "hMule"),
    (b"HN", "Hydranode"),
    (b"IL", "iLivid"),
    (b"JS", "Justseed.it"),
    (b"JT", "JavaTorrent"),
    (b"KG", "KGet"),
    (b"KT", "KTorrent"),
    (b"LC", "LeechCraft"),
    (b"LH", "LH-ABC"),
    (b"LP", "Lphant"),
    (b"LT", "libtorrent"),
    (b"LW", "LimeWire"),
    (b"MG", "MediaGet"),
    (b"MK", "Meerkat"),
    (b"MO", "MonoTorrent"),
    (b"MP", "MooPolice"),
    (b"MR", "Miro"),
    (b"MT", "MoonlightTorrent"),
    (b"NE", "BT Next Evolution"),
    (b"NX", "Net Transport"),
    (b"OS", "OneSwarm"),
    (b"OT", "OmegaTorrent"),
    (b"PB", "Protocol::BitTorrent"),
    (b"PD", "Pando"),
    (b"PI", "PicoTorrent"),
    (b"QD", "QQDownload"),
    (b"QT", "Qt 4 Torrent example"),
    (b"RT", "Retriever"),
    (b"RZ", "RezTorrent"),
    (b"SB", "Swiftbit"),
    (b"SD", "Thunder"),
    (b"SM", "SoMud"),
    (b"SP", "BitSpirit"),
    (b"SS", "SwarmScope"),
    (b"ST", "SymTorrent"),
    (b"SZ", "Shareaza"),
    (b"S~", "Shareaza alpha/beta"),
    (b"TB", "Torch"),
    (b"TE", "terasaur Seed Bank"),
    (b"TL", "Tribler"),
    (b"TN", "TorrentDotNET"),
    (b"TR", "Transmission"),
    (b"TS", "Torrentstorm"),
    (b"TT", "TuoTu"),
    (b"UE", "µTorrent Embedded"),
    (b"UL", "uLeecher!"),
    (b"UM", "µTorrent Mac"),
    (b"UT", "µTorrent"),
    (b"UW", "µTorrent Web"),
    (b"VG", "Vagaa"),
    (b"WD", "WebTorrent Desktop"),
    (b"WT", "BitLet"),
    (b"WW", "WebTorrent"),
    (b"WY", "FireTorrent"),
    (b"XF", "Xfplay"),
    (b"XL", "Xunlei"),
    (b"XS", "XSwifter"),
    (b"XT", "XanTorrent"),
    (b"XX", "Xtorrent"),
    (b"ZT", "ZipTorrent"),
    (b"lt", "rTorrent"),
    (b"qB", "qBittorrent"),
    (b"st", "sharktorrent"),
];

/// Shadow-style first letters and their names.
const SHADOW_NAMES: &[(u8, &str)] = &[
    (b'A', "ABC"),
    (b'O', "Osprey Permaseed"),
    (b'Q', "BTQueue"),
    (b'R', "Tribler"),
    (b'S', "Shadow's client"),
    (b'T', "BitTornado"),
    (b'U', "UPnP NAT Bit Torrent"),
];

fn pack(style: u8, bytes: &[u8]) -> ClientKey {
    let mut v = (style as u64) << 56;
    for (i, &b) in bytes.iter().take(7).enumerate() {
        v |= (b as u64) << (48 - 8 * i);
    }
    ClientKey(v)
}

fn unpack(key: ClientKey) -> (u8, [u8; 7]) {
    let mut b = [0u8; 7];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (key.0 >> (48 - 8 * i)) as u8;
    }
    ((key.0 >> 56) as u8, b)
}

fn is_shadow_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// Which codes [`AZUREUS_NAMES`] holds, one bit per pair of ASCII bytes
/// (`a * 128 + b`): every announce asks, so the answer is one load rather
/// than a binary search of mispredicted branches.
static AZUREUS_KNOWN: [u64; 256] = {
    let mut bits = [0u64; 256];
    let mut i = 0;
    while i < AZUREUS_NAMES.len() {
        let [a, b] = *AZUREUS_NAMES[i].0;
        let k = (a as usize & 127) * 128 + (b as usize & 127);
        bits[k / 64] |= 1 << (k % 64);
        i += 1;
    }
    bits
};

/// Whether `code` is an Azureus-style client code this tracker names.
#[inline]
fn azureus_known(code: [u8; 2]) -> bool {
    let k = code[0] as usize * 128 + code[1] as usize;
    code.is_ascii() && AZUREUS_KNOWN[k / 64] >> (k % 64) & 1 == 1
}

/// The name of an Azureus-style client code.
fn azureus_name(code: &[u8; 2]) -> Option<&'static str> {
    AZUREUS_NAMES
        .binary_search_by(|(c, _)| c.cmp(&code))
        .ok()
        .map(|i| AZUREUS_NAMES[i].1)
}

impl ClientKey {
    /// The unknown client.
    pub const UNKNOWN: ClientKey = ClientKey(0);

    /// The client and version a peer id names.
    pub fn of(id: &PeerId) -> ClientKey {
        let p = &id.0;
        // Azureus style: -XXvvvv-
        if p[0] == b'-'
            && p[7] == b'-'
            && azureus_known([p[1], p[2]])
            && p[3..7].iter().all(u8::is_ascii_alphanumeric)
        {
            return pack(AZUREUS, &p[1..7]);
        }
        if p.starts_with(b"exbc") || p.starts_with(b"FUTB") || p.starts_with(b"xUTB") {
            return pack(BITCOMET, &p[4..6]);
        }
        if p.starts_with(b"XBT") && p[3..6].iter().all(u8::is_ascii_digit) {
            return pack(XBT, &p[3..6]);
        }
        if p.starts_with(b"TIX") && p[3..7].iter().all(u8::is_ascii_digit) {
            return pack(TIXATI, &p[3..7]);
        }
        if p.starts_with(b"A2-") {
            // A2-1-36-0-: major, minor and patch between dashes.
            let rest = &p[3..];
            let end = rest
                .iter()
                .position(|&c| !(c.is_ascii_digit() || c == b'-'))
                .unwrap_or(rest.len());
            return pack(ARIA2, &rest[..end.min(7)]);
        }
        if p.starts_with(b"-aria2-") {
            return pack(ARIA2, b"");
        }
        if p.starts_with(b"OP") && p[2..6].iter().all(u8::is_ascii_digit) {
            return pack(OPERA, &p[2..6]);
        }
        // Mainline: M7-4-3-- (or M10-2-3-)
        if p[0] == b'M' && p[1].is_ascii_digit() {
            let head = &p[1..8];
            if head.iter().all(|&c| c.is_ascii_digit() || c == b'-')
                && head.iter().filter(|&&c| c == b'-').count() >= 2
            {
                return pack(MAINLINE, head);
            }
        }
        // Shadow: a letter, three version characters, then dashes.
        if let Some(&(c, _)) = SHADOW_NAMES.iter().find(|(c, _)| *c == p[0]) {
            let version = &p[1..6];
            if version.iter().all(|&c| is_shadow_char(c))
                && p[1..4].iter().all(|&c| c != b'-')
                && (p[4] == b'-' || p[5] == b'-')
            {
                return pack(SHADOW, &[c, p[1], p[2], p[3], p[4], p[5]]);
            }
        }
        ClientKey::UNKNOWN
    }

    /// Client name and version, for statistics: `("qBittorrent", "4.6.5")`.
    /// An unknown client is `("unknown", "")`.
    pub fn describe(self) -> (&'static str, String) {
        let (style, b) = unpack(self);
        match style {
            AZUREUS => {
                let code = [b[0], b[1]];
                let name = azureus_name(&code).unwrap_or("unknown");
                (name, azureus_version(&code, &b[2..6]))
            }
            SHADOW => {
                let name = SHADOW_NAMES
                    .iter()
                    .find(|(c, _)| *c == b[0])
                    .map_or("unknown", |(_, n)| n);
                let digits: Vec<String> = b[1..6]
                    .iter()
                    .take_while(|&&c| c != b'-')
                    .filter_map(|&c| shadow_digit(c))
                    .map(|d| d.to_string())
                    .collect();
                (name, digits.join("."))
            }
            MAINLINE => {
                let s = String::from_utf8_lossy(&b);
                let parts: Vec<&str> = s.split('-').filter(|p| !p.is_empty()).collect();
                ("BitTorrent", parts.join("."))
            }
            BITCOMET => ("BitComet", format!("{}.{:02}", b[0], b[1])),
            XBT => ("XBT Client", dotted(&b[0..3])),
            TIXATI => {
                let v = |i: usize| digit(b[i]).unwrap_or(0);
                (
                    "Tixati",
                    format!("{}.{}", v(0) * 10 + v(1), v(2) * 10 + v(3)),
                )
            }
            ARIA2 => {
                let s = String::from_utf8_lossy(&b);
                let parts: Vec<&str> = s
                    .trim_end_matches('\0')
                    .split('-')
                    .filter(|p| !p.is_empty())
                    .collect();
                ("aria2", parts.join("."))
            }
            OPERA => ("Opera", String::from_utf8_lossy(&b[0..4]).into_owned()),
            _ => ("unknown", String::new()),
        }
    }
}

/// A version character: 0-9, then A-Z for 10 to 35, a-z for 36 to 61.
fn digit(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as u32),
        b'A'..=b'Z' => Some((c - b'A') as u32 + 10),
        b'a'..=b'z' => Some((c - b'a') as u32 + 36),
        _ => None,
    }
}

fn shadow_digit(c: u8) -> Option<u32> {
    match c {
        b'.' => Some(62),
        _ => digit(c),
    }
}

fn dotted(d: &[u8]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|&c| (c as char).to_string())
        .collect::<Vec<_>>();
    parts.join(".")
}

fn azureus_version(code: &[u8; 2], v: &[u8]) -> String {
    let d: Vec<u32> = v.iter().map(|&c| digit(c).unwrap_or(0)).collect();
    match code {
        // Transmission: 2.94 is 2940; from 3.00 on, 4.0.6 is 4060.
        b"TR" if d[0] < 4 => format!("{}.{}{}", d[0], d[1], d[2]),
        b"TR" => format!("{}.{}.{}", d[0], d[1], d[2]),
        // WebTorrent: two two-digit numbers, 0109 is 1.9.
        b"WW" | b"WD" => format!("{}.{}", d[0] * 10 + d[1], d[2] * 10 + d[3]),
        // µTorrent and BitTorrent end with a build letter (W, B, S...).
        b"UT" | b"UM" | b"UW" | b"UE" | b"BT" => format!("{}.{}.{}", d[0], d[1], d[2]),
        // Most others: major.minor.patch, and a fourth number when non-zero.
        _ if v[3].is_ascii_digit() && d[3] != 0 => {
            format!("{}.{}.{}.{}", d[0], d[1], d[2], d[3])
        }
        _ => format!("{}.{}.{}", d[0], d[1], d[2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(prefix: &[u8]) -> PeerId {
        let mut p = [b'x'; 20];
        p[..prefix.len()].copy_from_slice(prefix);
        PeerId(p)
    }

    fn named(prefix: &[u8]) -> (&'static str, String) {
        ClientKey::of(&id(prefix)).describe()
    }

    #[test]
    fn the_known_codes_are_the_named_ones() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let c = [a, b];
                assert_eq!(azureus_known(c), azureus_name(&c).is_some(), "{c:?}");
            }
        }
        assert!(azureus_known(*b"qB") && !azureus_known(*b"qQ"));
    }

    #[test]
    fn well_known_clients() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"-qB4650-", "qBittorrent", "4.6.5"),
            (b"-TR2940-", "Transmission", "2.94"),
            (b"-TR4060-", "Transmission", "4.0.6"),
            (b"-LT2080-", "libtorrent", "2.0.8"),
            (b"-lt0D80-", "rTorrent", "0.13.8"),
            (b"-UT355W-", "µTorrent", "3.5.5"),
            (b"-BT7a5W-", "BitTorrent", "7.36.5"),
            (b"-DE13F0-", "Deluge", "1.3.15"),
            (b"-WW0109-", "WebTorrent", "1.9"),
            (b"-AZ5770-", "Vuze", "5.7.7"),
            (b"-BC0180-", "BitComet", "0.1.8"),
            (b"-BI2501-", "BiglyBT", "2.5.0.1"),
            (b"exbc\x01\x38", "BitComet", "1.56"),
            (b"TIX0283", "Tixati", "2.83"),
            (b"A2-1-36-0-", "aria2", "1.36.0"),
            (b"M7-4-3--", "BitTorrent", "7.4.3"),
            (b"S58B----", "Shadow's client", "5.8.11"),
            (b"T03I-----", "BitTornado", "0.3.18"),
            (b"XBT054d-", "XBT Client", "0.5.4"),
            (b"OP7685", "Opera", "7685"),
        ];
        for (prefix, name, version) in cases {
            assert_eq!(
                named(prefix),
                (*name, version.to_string()),
                "{}",
                String::from_utf8_lossy(prefix)
            );
        }
    }

    #[test]
    fn azureus_codes_are_sorted_for_the_search() {
        assert!(AZUREUS_NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn unknown_clients() {
        for prefix in [&b"-ZZ1234-"[..], b"\0\0\0\0", b"-qB46", b"Mxx", b"S----"] {
            assert_eq!(ClientKey::of(&id(prefix)), ClientKey::UNKNOWN);
        }
        assert_eq!(ClientKey::UNKNOWN.describe(), ("unknown", String::new()));
    }

    #[test]
    fn same_client_and_version_same_key() {
        let a = ClientKey::of(&id(b"-qB4650-aaaaaaaaaaaa"));
        let b = ClientKey::of(&id(b"-qB4650-bbbbbbbbbbbb"));
        let c = ClientKey::of(&id(b"-qB4640-bbbbbbbbbbbb"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    proptest! {
        #[test]
        fn any_peer_id_is_described(bytes in proptest::array::uniform20(any::<u8>())) {
            let (name, _) = ClientKey::of(&PeerId(bytes)).describe();
            prop_assert!(!name.is_empty());
        }

        #[test]
        fn any_key_is_described(k in any::<u64>()) {
            let _ = ClientKey(k).describe();
        }
    }
}
