//! What `contrib/` gives an operator works with this tracker: the systemd
//! unit passes `systemd-analyze verify` and its command line is one the
//! binary takes; the alert rules pass `promtool check rules` and their own
//! `promtool test rules`; the dashboard is JSON whose queries parse; and the
//! rules and the dashboard name only metrics and labels that the tracker's
//! `/metrics` really has.
//!
//! `systemd-analyze` comes with systemd and `promtool` with Debian's
//! `prometheus` package; `.ci/run` installs what is missing, and so does
//! the test itself when it runs elsewhere (`common::tool`).

mod common;

use common::{get, tool, Tracker};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("contrib-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// ---- systemd ----

const UNIT: &str = "contrib/systemd/bittorrent-tracker.service";

/// The value of `key=` in the unit (the last one, as systemd takes it).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn the_systemd_unit_verifies() {
    let analyze = tool("systemd-analyze", "systemd");
    let unit = read(UNIT);
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart= in the unit");
    let (binary, args) = exec.split_once(' ').unwrap_or((exec, ""));
    assert_eq!(
        binary, "/usr/local/bin/bittorrent-tracker",
        "where `cargo install --root /usr/local` puts it (docs/operating.md)"
    );
    // verify wants ExecStart's program to exist: the one just built.
    let dir = scratch("systemd");
    let path = dir.join("bittorrent-tracker.service");
    let built = env!("CARGO_BIN_EXE_bittorrent-tracker");
    std::fs::write(
        &path,
        unit.replace(
            &format!("ExecStart={binary}"),
            &format!("ExecStart={built}"),
        ),
    )
    .unwrap();
    // --man=no: the man page is installed apart (docs/operating.md).
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = text(&out);
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("bittorrent-tracker"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {UNIT} ({}):\n{}",
        out.status,
        about_unit.join("\n")
    );

    // The command line is one the binary takes, and its state file is in
    // the unit's state directory.
    let state_dir = unit_value(&unit, "StateDirectory").expect("StateDirectory=");
    let mut cmd = Command::new(built);
    cmd.args(args.split_whitespace()).arg("--print-config");
    let out = cmd.output().unwrap();
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    let state = config
        .lines()
        .find_map(|l| l.strip_prefix("state = "))
        .unwrap_or_else(|| panic!("the unit's command saves no state:\n{config}"));
    assert!(
        state.starts_with(&format!("\"/var/lib/{state_dir}/")),
        "state = {state}, outside StateDirectory={state_dir}"
    );
    // The pid file an upgrade signals through is in the runtime directory.
    let run_dir = unit_value(&unit, "RuntimeDirectory").expect("RuntimeDirectory=");
    assert!(
        args.contains(&format!("--pid-file /run/{run_dir}/")),
        "the unit's --pid-file is outside RuntimeDirectory={run_dir}: {args}"
    );
    // The settings io_uring and a busy tracker need are there.
    for (key, want) in [
        ("LimitMEMLOCK", "infinity"),
        ("LimitNOFILE", "1048576"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        // An upgrade's new process says MAINPID= before it is the main one.
        ("Type", "notify"),
        ("NotifyAccess", "all"),
        ("RuntimeDirectory", "bittorrent-tracker"),
    ] {
        assert_eq!(unit_value(&unit, key), Some(want), "{key}= in {UNIT}");
    }
    assert!(
        unit_value(&unit, "SystemCallFilter").is_none(),
        "a system call filter would have to allow io_uring_setup, io_uring_enter and io_uring_register"
    );
}

// ---- Prometheus and Grafana ----

const RULES: &str = "contrib/prometheus/alerts.yml";
const RULE_TESTS: &str = "contrib/prometheus/alerts.test.yml";
const DASHBOARD: &str = "contrib/grafana/bittorrent-tracker.json";

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new(tool("promtool", "prometheus"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_alert_rules_pass_promtool_and_their_tests() {
    let dir = repo().join("contrib/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let out = promtool(&args, &dir);
        assert!(
            out.status.success(),
            "promtool {} ({}):\n{}",
            args.join(" "),
            out.status,
            text(&out)
        );
    }
    // Every alert has a test of its own.
    let tests = read(RULE_TESTS);
    for alert in alerts() {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{RULE_TESTS} does not test {alert}"
        );
    }
}

fn alerts() -> Vec<String> {
    read(RULES)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

/// The queries of the rules file: each `expr:`, on its line or in a block
/// under it.
fn rule_queries() -> Vec<String> {
    let text = read(RULES);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(expr) = l.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let expr = expr.trim();
        if expr == "|" || expr == ">" {
            let indent = l.len() - l.trim_start().len();
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|b| b.len() - b.trim_start().len() > indent || b.trim().is_empty())
                .map(|b| b.trim())
                .collect();
            out.push(block.join(" "));
        } else {
            out.push(expr.to_string());
        }
    }
    assert_eq!(out.len(), alerts().len(), "one expr per alert in {RULES}");
    out
}

/// The dashboard, parsed.
fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every query of the dashboard: its panels' targets (nested rows too),
/// with Grafana's variables replaced by values Prometheus reads, and the
/// metric selectors of its `label_values(...)` variables.
fn dashboard_queries() -> Vec<(String, String)> {
    fn panels(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in v.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
                out.push((title.clone(), expr.to_string()));
            }
            panels(&p["panels"], out);
        }
    }
    let d = dashboard();
    let mut out = Vec::new();
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(selector, _label)| selector.to_string())
                .unwrap_or_else(|| panic!("variable {}: {q}", v["name"]));
            out.push((format!("variable {}", v["name"]), inner));
        }
    }
    assert!(out.len() > 20, "the dashboard's queries: {out:?}");
    out.into_iter()
        .map(|(title, q)| {
            let q = q
                .replace("$__rate_interval", "5m")
                .replace("$job", "bittorrent-tracker")
                .replace("$instance", ".*");
            (title, q)
        })
        .collect()
}

#[test]
fn the_dashboard_is_json_whose_queries_parse() {
    let d = dashboard();
    assert_eq!(d["title"], "bittorrent-tracker");
    let queries = dashboard_queries();
    // promtool parses PromQL in rules: each query as a recording rule.
    let dir = scratch("dashboard");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, q)) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::Value::from(q.as_str())
        ));
    }
    std::fs::write(dir.join("dashboard.yml"), rules).unwrap();
    let out = promtool(&["check", "rules", "dashboard.yml"], &dir);
    let said = text(&out);
    assert!(
        out.status.success(),
        "a dashboard query does not parse:\n{said}\nqueries:\n{}",
        queries
            .iter()
            .enumerate()
            .map(|(i, (t, q))| format!("dashboard_query_{i} ({t}): {q}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The metric names and label names a PromQL query reads.
#[derive(Default, Debug)]
struct Names {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
}

/// Keywords after which a parenthesised list of label names comes.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Aggregations (which may come before `by (...)`) and other words that
/// are not metric names.
const NOT_METRICS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Reads the names in `q`: strings, ranges and numbers skipped; an
/// identifier followed by `(` is a function; names in `{...}` before a
/// matcher and in `by (...)` lists are labels; what is left is a metric.
fn promql_names(q: &str, names: &mut Names) {
    let b = q.as_bytes();
    let mut i = 0;
    let mut label_list = false;
    let ident = |i: &mut usize| -> String {
        let s = *i;
        while *i < b.len() && ident_char(b[*i]) {
            *i += 1;
        }
        q[s..*i].to_string()
    };
    let skip_string = |i: &mut usize| {
        let quote = b[*i];
        *i += 1;
        while *i < b.len() && b[*i] != quote {
            *i += if b[*i] == b'\\' { 2 } else { 1 };
        }
        *i += 1;
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            skip_string(&mut i);
        } else if c == b'[' {
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
        } else if c == b'{' {
            // Matchers: label names before =, !=, =~, !~; values are strings.
            i += 1;
            while i < b.len() && b[i] != b'}' {
                if b[i] == b'"' || b[i] == b'\'' || b[i] == b'`' {
                    skip_string(&mut i);
                } else if ident_start(b[i]) {
                    names.labels.insert(ident(&mut i));
                } else {
                    i += 1;
                }
            }
        } else if c == b'(' && label_list {
            i += 1;
            while i < b.len() && b[i] != b')' {
                if ident_start(b[i]) {
                    names.labels.insert(ident(&mut i));
                } else {
                    i += 1;
                }
            }
            label_list = false;
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if ident_start(c) {
            let word = ident(&mut i);
            let next = q[i..].trim_start().as_bytes().first().copied();
            if LABEL_LISTS.contains(&word.as_str()) {
                label_list = true;
            } else if next != Some(b'(') && !NOT_METRICS.contains(&word.as_str()) {
                names.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
}

#[test]
fn promql_names_are_told_apart() {
    let mut n = Names::default();
    promql_names(
        r#"sum by (protocol, action) (rate(tracker_requests_total{job="$job", reason=~"a|b"}[5m])) > 0.9 * 1e5 and on(instance) group_left(version) up offset 5m"#,
        &mut n,
    );
    assert_eq!(
        n.metrics.into_iter().collect::<Vec<_>>(),
        ["tracker_requests_total", "up"]
    );
    assert_eq!(
        n.labels.into_iter().collect::<Vec<_>>(),
        ["action", "instance", "job", "protocol", "reason", "version"]
    );
}

/// The metric families and label names of the tracker's `/metrics`, once
/// every family is there (the full-scrape age comes with a first full
/// scrape).
fn exported() -> (BTreeSet<String>, BTreeSet<String>, String) {
    let t = Tracker::start(&[]);
    let full = get(t.v4(), "/scrape");
    assert_eq!(full.status, 200, "a full scrape");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = String::from_utf8(get(t.v4(), "/metrics").body).unwrap();
        if body.contains("\ntracker_full_scrape_age_seconds ") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut metrics, mut labels) = (BTreeSet::new(), BTreeSet::new());
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        metrics.insert(line[..name_end].to_string());
        if let Some(set) = line[name_end..].strip_prefix('{') {
            for pair in set.split('}').next().unwrap().split(',') {
                labels.insert(pair.split('=').next().unwrap().to_string());
            }
        }
    }
    (metrics, labels, body)
}

#[test]
fn rules_and_dashboard_use_only_metrics_the_tracker_exports() {
    let (metrics, labels, body) = exported();
    for family in [
        "tracker_full_scrape_age_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "tracker_worker_stalled",
    ] {
        assert!(metrics.contains(family), "{family} in\n{body}");
    }
    // Prometheus adds `up`, and `job` and `instance` to every series.
    let known_metric = |m: &str| m == "up" || metrics.contains(m);
    let known_label = |l: &str| ["job", "instance"].contains(&l) || labels.contains(l);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut used = BTreeSet::new();
    let queries = rule_queries()
        .into_iter()
        .map(|q| (RULES.to_string(), q))
        .chain(
            dashboard_queries()
                .into_iter()
                .map(|(title, q)| (format!("{DASHBOARD}: {title}"), q)),
        );
    for (place, q) in queries {
        let mut n = Names::default();
        promql_names(&q, &mut n);
        assert!(!n.metrics.is_empty(), "{place}: no metric in {q}");
        for m in n.metrics.iter().filter(|m| !known_metric(m)) {
            wrong
                .entry(format!("metric {m}"))
                .or_default()
                .push(place.clone());
        }
        for l in n.labels.iter().filter(|l| !known_label(l)) {
            wrong
                .entry(format!("label {l}"))
                .or_default()
                .push(place.clone());
        }
        used.extend(n.metrics);
    }
    assert!(
        wrong.is_empty(),
        "names the tracker's /metrics does not have:\n{}\n\nit has the metrics {metrics:?}\nand the labels {labels:?}",
        wrong
            .iter()
            .map(|(name, places)| format!("  {name}, in {}", places.join("; ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // What the issue asks to watch is watched.
    for m in [
        "up",
        "tracker_worker_stalled",
        "tracker_refused_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "tracker_requests_total",
        "tracker_worker_heartbeat_age_seconds",
        "tracker_full_scrape_age_seconds",
    ] {
        assert!(
            used.contains(m),
            "neither the rules nor the dashboard use {m}"
        );
    }
}
