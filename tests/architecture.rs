//! The rules of docs/architecture.md, checked on the source: the module
//! graph of `src/` has no cycle, `protocol/`, `swarm/` and `answer/` touch
//! no socket, clock or glommio, only `server/` knows glommio, and `client/`
//! and `server/` never import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of the library: its path (`crate::server::udp`) and source.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut mods = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
            parts.pop();
        }
        if parts == ["main"] {
            continue; // the command, not the library
        }
        let name = std::iter::once("crate".to_string())
            .chain(parts)
            .collect::<Vec<_>>()
            .join("::");
        let text = std::fs::read_to_string(&f).unwrap();
        mods.insert(name, code_of(&text));
    }
    mods
}

/// The code of a file without comments and without its inline test
/// module (`mod tests;`, a file of its own, is a module of its own), with
/// grouped imports spelled out: `use a::{b, c::d}` reads `a::b a::c::d`.
fn code_of(text: &str) -> String {
    let body = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
    let code = body
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    expand_groups(&code)
}

/// Replaces each `prefix::{x, y::{z, w}}` by `prefix::x prefix::y::{z, w}`,
/// outermost first, until no group is left.
fn expand_groups(code: &str) -> String {
    let mut code = code.to_string();
    while let Some(start) = code.find("::{") {
        let (mut depth, mut close, mut cuts) = (0usize, start + 3, vec![start + 3]);
        for (i, c) in code[start + 2..].char_indices() {
            let at = start + 2 + i;
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = at;
                        break;
                    }
                }
                ',' if depth == 1 => cuts.push(at + 1),
                _ => {}
            }
        }
        cuts.push(close + 1);
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let prefix_start = code[..start]
            .rfind(|c: char| !ident(c))
            .map_or(0, |i| i + 1);
        let prefix = code[prefix_start..start].to_string();
        let items: Vec<String> = cuts
            .windows(2)
            .map(|w| code[w[0]..w[1] - 1].trim().to_string())
            .filter(|i| !i.is_empty())
            .map(|i| match i.as_str() {
                "self" => prefix.clone(),
                i => format!("{prefix}::{}", i.split(" as ").next().unwrap().trim()),
            })
            .collect();
        code.replace_range(prefix_start..close + 1, &items.join(" "));
    }
    code
}

#[test]
fn grouped_imports_are_read_whole() {
    assert_eq!(
        expand_groups("use crate::{server::Server, client::{Client, conn::Conn}};"),
        "use crate::server::Server crate::client::Client crate::client::conn::Conn;"
    );
    assert_eq!(
        expand_groups("use super::{self, x as y};"),
        "use super super::x;"
    );
}

/// The paths a module's code names: `crate::a::b`, `super::c`, or a child's
/// name first, each as a run of `::`-joined identifiers.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if ident(b[i]) && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b':')) {
            let mut parts = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < b.len() && ident(b[j]) {
                    j += 1;
                }
                parts.push(code[s..j].to_string());
                if code[j..].starts_with("::") && j + 2 < b.len() && ident(b[j + 2]) {
                    j += 2;
                } else {
                    break;
                }
            }
            // `a::b::*` names module `a::b`.
            if code[j..].starts_with("::*") {
                parts.push("*".to_string());
            }
            if parts.len() > 1 {
                out.push(parts);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Each module and the modules whose items it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let resolve = |full: &[String]| -> Option<String> {
        (1..=full.len())
            .rev()
            .map(|n| full[..n].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let mut g = BTreeMap::new();
    for (m, code) in &mods {
        let here: Vec<String> = m.split("::").map(str::to_string).collect();
        let mut deps = BTreeSet::new();
        for p in paths(code) {
            let full: Vec<String> = match p[0].as_str() {
                "crate" => p.clone(),
                "super" => {
                    let ups = p.iter().take_while(|s| *s == "super").count();
                    let mut b = here[..here.len().saturating_sub(ups)].to_vec();
                    b.extend(p[ups..].iter().cloned());
                    b
                }
                "self" => here.iter().chain(&p[1..]).cloned().collect(),
                first if mods.contains_key(&format!("{m}::{first}")) => {
                    here.iter().chain(&p).cloned().collect()
                }
                _ => continue,
            };
            if let Some(t) = resolve(&full).filter(|t| t != m) {
                deps.insert(t);
            }
        }
        g.insert(m.clone(), deps);
    }
    g
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    // Tarjan's strongly connected components: any of more than one module
    // is a cycle.
    struct Tarjan<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, (usize, usize)>,
        stack: Vec<&'a str>,
        next: usize,
        cycles: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, (self.next, self.next));
            self.next += 1;
            self.stack.push(v);
            for w in &self.g[v] {
                let w = w.as_str();
                match self.index.get(w).copied() {
                    None => {
                        self.visit(w);
                        let low = self.index[w].1.min(self.index[v].1);
                        self.index.get_mut(v).unwrap().1 = low;
                    }
                    Some((wi, _)) if self.stack.contains(&w) => {
                        let low = wi.min(self.index[v].1);
                        self.index.get_mut(v).unwrap().1 = low;
                    }
                    Some(_) => {}
                }
            }
            let (vi, vl) = self.index[v];
            if vi == vl {
                let at = self.stack.iter().rposition(|x| *x == v).unwrap();
                let comp: Vec<&str> = self.stack.drain(at..).collect();
                if comp.len() > 1 {
                    self.cycles.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        g: &g,
        index: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        cycles: Vec::new(),
    };
    for m in g.keys() {
        if !t.index.contains_key(m.as_str()) {
            t.visit(m);
        }
    }
    let shown: Vec<String> = t
        .cycles
        .iter()
        .map(|c| {
            let inside: Vec<String> = c
                .iter()
                .map(|m| {
                    let deps: Vec<&str> = g[*m]
                        .iter()
                        .map(String::as_str)
                        .filter(|d| c.contains(d))
                        .collect();
                    format!("{m} -> {deps:?}")
                })
                .collect();
            inside.join("; ")
        })
        .collect();
    assert!(shown.is_empty(), "modules in cycles:\n{}", shown.join("\n"));
    assert!(g.len() > 40, "the walk found the modules: {:?}", g.keys());
}

#[test]
fn layers_import_only_downward() {
    let g = graph();
    let mods = modules();
    let under = |m: &str, top: &str| m == top || m.starts_with(&format!("{top}::"));
    for (m, deps) in &g {
        for d in deps {
            let rule = if (under(m, "crate::client") && under(d, "crate::server"))
                || (under(m, "crate::server") && under(d, "crate::client"))
            {
                "client/ and server/ never import each other"
            } else if [
                "crate::protocol",
                "crate::swarm",
                "crate::answer",
                "crate::config",
            ]
            .iter()
            .any(|l| under(m, l))
                && (under(d, "crate::server") || under(d, "crate::client"))
            {
                "protocol/, swarm/, answer/ and config/ import neither the server nor the client"
            } else {
                continue;
            };
            panic!("{m} uses {d}: {rule}");
        }
    }
    for (m, code) in &mods {
        let pure = ["crate::protocol", "crate::swarm", "crate::answer"]
            .iter()
            .any(|l| under(m, l));
        if pure {
            for word in [
                "glommio",
                "Instant::now",
                "SystemTime",
                "std::net::UdpSocket",
                "TcpStream",
            ] {
                assert!(!code.contains(word), "{m} is pure, yet names {word}");
            }
        } else if !under(m, "crate::server") {
            assert!(
                !code.contains("glommio"),
                "only server/ knows glommio, yet {m} names it"
            );
        }
    }
}
