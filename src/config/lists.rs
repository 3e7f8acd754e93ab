//! Allow and deny lists of info hashes: files of one hash a line (40 hex
//! digits), blank lines and `#` comments, named by `allow` and `deny`.

use crate::protocol::InfoHash;
use std::collections::HashSet;
use std::path::Path;

/// Allow and deny lists of info hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lists {
    /// When present, only these hashes are tracked.
    pub allow: Option<HashSet<InfoHash, ahash::RandomState>>,
    pub deny: HashSet<InfoHash, ahash::RandomState>,
}

impl Lists {
    /// Reads the lists from their files.
    pub fn load(allow: Option<&Path>, deny: Option<&Path>) -> Result<Lists, String> {
        Ok(Lists {
            allow: allow.map(read_list).transpose()?,
            deny: deny.map(read_list).transpose()?.unwrap_or_default(),
        })
    }

    /// Nothing is listed: every hash passes.
    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }

    pub fn allows(&self, h: &InfoHash) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(h)) && !self.deny.contains(h)
    }
}

fn read_list(path: &Path) -> Result<HashSet<InfoHash, ahash::RandomState>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_list(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a list: one info hash a line as 40 hex digits, blank lines, and
/// `#` comments (whole lines, or after the hash).
pub fn parse_list(text: &str) -> Result<HashSet<InfoHash, ahash::RandomState>, String> {
    let mut set = HashSet::with_hasher(ahash::RandomState::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let h = InfoHash::from_hex(line).ok_or_else(|| {
            let shown: String = line.chars().take(60).collect();
            format!(
                "line {}: `{shown}` is not an info hash (40 hex digits)",
                n + 1
            )
        })?;
        set.insert(h);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn lists_with_comments_and_blank_lines() {
        let text = format!(
            "# allowed\n\n{A}  # ubuntu\n  {}\n",
            A.to_uppercase().replace('0', "f")
        );
        let set = parse_list(&text).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&InfoHash::from_hex(A).unwrap()));
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse_list(&format!("{A}\nnot-a-hash\n")).unwrap_err();
        assert_eq!(
            e,
            "line 2: `not-a-hash` is not an info hash (40 hex digits)"
        );
        assert!(parse_list(&A[..39]).is_err());
    }

    #[test]
    fn allow_and_deny() {
        let h = InfoHash::from_hex(A).unwrap();
        let other = InfoHash([9; 20]);
        let mut l = Lists::default();
        assert!(l.is_open() && l.allows(&h));
        l.deny.insert(h);
        assert!(!l.allows(&h) && l.allows(&other));
        let mut allow = HashSet::with_hasher(ahash::RandomState::new());
        allow.insert(other);
        l = Lists {
            allow: Some(allow),
            ..Lists::default()
        };
        assert!(!l.allows(&h) && l.allows(&other));
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs(text in ".{0,400}") {
            let _ = parse_list(&text);
        }
    }
}
