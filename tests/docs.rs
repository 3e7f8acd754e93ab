//! The documentation holds together: every relative link in the
//! repository's Markdown leads to a file of the repository (and a
//! `#anchor` to a heading of it), and docs/configuration.md lists exactly
//! the keys `--print-config` prints, with the defaults it prints, and only
//! flags the binary takes. Plain std, no network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file of the repository but vendored code, build output
/// and hidden directories.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.')
                    && !["target", "vendor", "node_modules"].contains(&name.as_str())
                {
                    walk(&p, out);
                }
            } else if name.ends_with(".md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(repo(), &mut out);
    out
}

/// `text` with fenced code blocks and inline code spans blanked out (same
/// length, same line breaks), so that what they show is not read as links
/// or headings.
fn without_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let opens = ["```", "~~~"].into_iter().find(|f| t.starts_with(f));
        match (fence, opens) {
            (None, Some(f)) => {
                fence = Some(f);
                out.extend(line.chars().map(blank));
            }
            (Some(f), Some(g)) if f == g => {
                fence = None;
                out.extend(line.chars().map(blank));
            }
            (Some(_), _) => out.extend(line.chars().map(blank)),
            (None, None) => out.push_str(&without_spans(line)),
        }
    }
    out
}

fn blank(c: char) -> char {
    if c == '\n' {
        '\n'
    } else {
        ' '
    }
}

/// A line with its code spans (`` `x` ``, ``` ``x`` ```) blanked out.
fn without_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run of the same length.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in &mut out[i..j + run] {
                    *c = ' ';
                }
                i = j + run;
            }
            None => i += run,
        }
    }
    out.into_iter().collect()
}

/// The link targets of a Markdown text: inline links and images
/// (`[text](dest "title")`) and reference definitions (`[label]: dest`),
/// each with its line number.
fn links(text: &str) -> Vec<(usize, String)> {
    let code_free = without_code(text);
    let line_of = |offset: usize| code_free[..offset].matches('\n').count() + 1;
    let mut out = Vec::new();
    let b = code_free.as_bytes();
    let mut from = 0;
    while let Some(at) = code_free[from..].find("](") {
        let start = from + at + 2;
        let mut depth = 1;
        let mut end = start;
        while end < b.len() && depth > 0 {
            match b[end] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                b'\n' if depth > 0 => break,
                _ => {}
            }
            end += 1;
        }
        if depth == 0 {
            let inner = code_free[start..end - 1].trim();
            let dest = match inner.strip_prefix('<') {
                Some(rest) => rest.split('>').next().unwrap_or(""),
                None => inner.split_whitespace().next().unwrap_or(""),
            };
            out.push((line_of(start), dest.to_string()));
        }
        from = start;
    }
    for (n, line) in code_free.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('[') {
            if let Some((label, dest)) = rest.split_once("]:") {
                if !label.is_empty() && !label.contains(']') {
                    if let Some(d) = dest.split_whitespace().next() {
                        out.push((n + 1, d.trim_matches(['<', '>']).to_string()));
                    }
                }
            }
        }
    }
    out
}

/// The anchors GitHub gives the headings of a Markdown text: the heading's
/// text without markup, lower-cased, with everything but letters, digits,
/// `-`, `_` and spaces dropped and spaces made `-`; a repeated one gets
/// `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let code_free = without_code(text);
    for (line, original) in code_free.lines().zip(text.lines()) {
        let t = line.trim_start();
        let level = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) || !t[level..].starts_with(' ') {
            continue;
        }
        // The heading as written (code spans keep their text).
        let heading = original.trim_start()[level..].trim().trim_end_matches('#');
        let mut plain = String::new();
        let mut rest = heading;
        // [text](dest) shows as text.
        while let Some(open) = rest.find('[') {
            plain.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after
                .split_once("](")
                .and_then(|(t, r)| Some((t, r.split_once(')')?.1)))
            {
                Some((label, tail)) => {
                    plain.push_str(label);
                    rest = tail;
                }
                None => {
                    plain.push('[');
                    rest = after;
                }
            }
        }
        plain.push_str(rest);
        let slug: String = plain
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// `base` joined with `rel`, `.` and `..` resolved without touching the
/// file system; `None` when it climbs out of the repository.
fn resolve(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<Component> = base.components().collect();
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    let p: PathBuf = parts.iter().collect();
    p.starts_with(repo()).then_some(p)
}

#[test]
fn headings_become_the_anchors_github_makes() {
    let a = anchors(
        "# Top\n## Choosing `--workers`\n```\n# not a heading\n```\n## Restarts and upgrades: `--state FILE`\n## Top\n### [Link](x.md) and (more)\n",
    );
    let want = [
        "choosing---workers",
        "link-and-more",
        "restarts-and-upgrades---state-file",
        "top",
        "top-1",
    ];
    assert_eq!(a.iter().map(String::as_str).collect::<Vec<_>>(), want);
    let l = links("a [x](b.md#c) `[no](pe.md)` ![i](<img 1.png> \"t\")\n\n```\n[no](code.md)\n```\n[ref]: r.md\n");
    assert_eq!(
        l,
        [
            (1, "b.md#c".to_string()),
            (1, "img 1.png".to_string()),
            (6, "r.md".to_string())
        ]
    );
}

#[test]
fn every_relative_link_leads_into_the_repository() {
    let files = markdown_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    for must in [
        "README.md",
        "tuning.md",
        "CHANGELOG.md",
        "docs/operating.md",
        "docs/configuration.md",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} among the files checked: {names:?}"
        );
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(repo()).unwrap().display();
        for (line, dest) in links(&text) {
            // Absolute URLs (a scheme before any slash) are not checked.
            let scheme = dest
                .split_once(':')
                .is_some_and(|(s, _)| !s.is_empty() && !s.contains('/') && !s.contains('#'));
            if scheme || dest.is_empty() {
                continue;
            }
            checked += 1;
            let (path, anchor) = match dest.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (dest.as_str(), None),
            };
            let target = if path.is_empty() {
                Some(file.clone())
            } else if path.starts_with('/') {
                None
            } else {
                resolve(file.parent().unwrap(), path)
            };
            let Some(target) = target.filter(|t| t.exists()) else {
                broken.push(format!(
                    "{name}:{line}: ({dest}): no such file in the repository"
                ));
                continue;
            };
            if let Some(anchor) = anchor {
                if target.extension().is_some_and(|e| e == "md") {
                    let heads = anchors(&std::fs::read_to_string(&target).unwrap());
                    if !heads.contains(anchor) {
                        broken.push(format!(
                            "{name}:{line}: ({dest}): no heading #{anchor} in {}; its anchors: {}",
                            target.strip_prefix(repo()).unwrap().display(),
                            heads.into_iter().collect::<Vec<_>>().join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} relative links found");
    assert!(
        broken.is_empty(),
        "{} broken links:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

const CONFIG_DOC: &str = "docs/configuration.md";

/// What `bittorrent-tracker --print-config` prints: each key
/// (`limits.max_peers` for a section's) and its value, `None` for a key
/// printed commented out (one with no default).
fn printed_keys() -> BTreeMap<String, Option<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "--print-config: {}", out.status);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut keys = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{s}.");
            continue;
        }
        let (commented, l) = match line.strip_prefix("# ") {
            Some(l) => (true, l),
            None => (false, line),
        };
        let Some((key, value)) = l.split_once(" = ") else {
            continue;
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let value = (!commented).then(|| value.to_string());
        assert!(
            keys.insert(format!("{section}{key}"), value).is_none(),
            "{key} printed twice:\n{text}"
        );
    }
    assert!(keys.len() > 30, "the keys of\n{text}");
    keys
}

/// The keys of docs/configuration.md's tables (rows whose first cell is
/// one code span), in the section the heading above names (`[limits]`),
/// with what the default cell says: its code span, or `None` for "none".
fn documented_keys() -> (BTreeMap<String, Option<String>>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join(CONFIG_DOC)).unwrap();
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    let mut section = String::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            section = line
                .split_once("`[")
                .and_then(|(_, r)| r.split_once("]`"))
                .map(|(s, _)| format!("{s}."))
                .unwrap_or_default();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let Some(key) = cells[1]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .filter(|k| !k.contains('`'))
        else {
            continue;
        };
        let default = cells[2];
        let value = if default.starts_with("none") {
            None
        } else {
            match default
                .strip_prefix('`')
                .and_then(|d| d.split_once('`'))
                .map(|(v, _)| v.to_string())
            {
                Some(v) => Some(v),
                None => {
                    problems.push(format!(
                        "{CONFIG_DOC}:{}: {key}: the default cell `{default}` is neither a code span nor \"none\"",
                        n + 1
                    ));
                    continue;
                }
            }
        };
        if keys.insert(format!("{section}{key}"), value).is_some() {
            problems.push(format!(
                "{CONFIG_DOC}:{}: {section}{key} documented twice",
                n + 1
            ));
        }
    }
    (keys, problems)
}

#[test]
fn the_configuration_page_lists_every_key_print_config_prints() {
    let printed = printed_keys();
    let (documented, mut problems) = documented_keys();
    for (key, value) in &printed {
        match documented.get(key) {
            None => problems.push(format!(
                "{key}: printed by --print-config, missing from {CONFIG_DOC}"
            )),
            Some(doc) if doc != value => problems.push(format!(
                "{key}: the default is {} in {CONFIG_DOC} but --print-config prints {}",
                doc.as_deref().unwrap_or("none"),
                value.as_deref().unwrap_or("it commented out (no default)")
            )),
            Some(_) => {}
        }
    }
    for key in documented.keys().filter(|k| !printed.contains_key(*k)) {
        problems.push(format!(
            "{key}: in {CONFIG_DOC}, but --print-config prints no such key"
        ));
    }
    assert!(
        problems.is_empty(),
        "{CONFIG_DOC} and --print-config disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_configuration_page_names_only_flags_the_binary_takes() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bittorrent-tracker"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let all = [
        help(&["--help"]),
        help(&["announce", "--help"]),
        help(&["scrape", "--help"]),
    ]
    .join("\n");
    let taken: BTreeSet<&str> = all
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    let text = std::fs::read_to_string(repo().join(CONFIG_DOC)).unwrap();
    let named: BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2 && !w.starts_with("---"))
        .collect();
    assert!(named.len() > 30, "flags named: {named:?}");
    let unknown: Vec<&&str> = named.difference(&taken).collect();
    assert!(
        unknown.is_empty(),
        "{CONFIG_DOC} names flags that bittorrent-tracker --help does not list: {unknown:?}"
    );
}
