#!/usr/bin/env bash
# Reads a report written by scripts/benchmarks.sh and prints, as a markdown
# section, each target of issue 22 with the ratio the report's medians give
# and whether it is met. benchmarks.sh appends it to the report it wrote.
#
#   scripts/benchmark-targets.sh docs/benchmarks/DATE-all.md
set -euo pipefail
report=${1:?usage: $0 REPORT.md}
[ -f "$report" ] || { echo "$0: no report at $report" >&2; exit 1; }

awk -F'|' '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
/^## / { section = substr($0, 4); next }
/^\|/ {
  name = trim($2)
  if (name == "" || name == "tracker" || name == "run" || name ~ /^-/) next
  if (section == "UDP under aquatic_udp_load_test") {
    if (name ~ /^[0-9]+$/) { runs = runs (runs == "" ? "" : ", ") trim($7) "×"; if (trim($7) + 0 < 1.25) lt_miss = 1; nruns++ }
    next
  }
  rate[section, name] = trim($3) + 0
  rss[section, name] = trim($7) + 0
}
function k(x) { return sprintf("%.1fk", x / 1000) }
function row(target, sec, a, b, want, share,    r, shown) {
  if (!((sec, a) in rate) || !((sec, b) in rate) || rate[sec, b] == 0) {
    printf "| %s | not measured (%s missing) | no |\n", target, b; return
  }
  r = rate[sec, a] / rate[sec, b]
  if (share) shown = sprintf("%.0f%% (%s of %s/s)", 100 * r, k(rate[sec, a]), k(rate[sec, b]))
  else shown = sprintf("%.2f× (%s vs %s/s)", r, k(rate[sec, a]), k(rate[sec, b]))
  printf "| %s | %s | %s |\n", target, shown, (r >= want ? "yes" : "no")
}
END {
  udp = "UDP, closed loop"; http = "HTTP, 1,000 keep-alive connections"
  ws = "WebSocket, 1,000 connections with 5 offers"; me = "bittorrent-tracker"
  print "## Against the targets of issue 22"
  print ""
  print "Computed from the medians above by `scripts/benchmark-targets.sh`."
  print ""
  print "| target | measured | met |"
  print "|---|---|---|"
  row("UDP ≥ 1.25× aquatic_udp", udp, me, "aquatic_udp", 1.25, 0)
  row("UDP ≥ 1.3× opentracker", udp, me, "opentracker", 1.3, 0)
  if ((udp, "aquatic_udp") in rss && rss[udp, "aquatic_udp"] > 0) {
    m = rss[udp, me] / rss[udp, "aquatic_udp"]
    printf "| memory ≤ 0.5× aquatic_udp, same UDP run | %.2f× (%d vs %d MiB peak) | %s |\n", m, rss[udp, me], rss[udp, "aquatic_udp"], (m <= 0.5 ? "yes" : "no")
  } else print "| memory ≤ 0.5× aquatic_udp, same UDP run | not measured (aquatic_udp missing) | no |"
  if (nruns > 0) printf "| UDP ≥ 1.25× aquatic_udp under `aquatic_udp_load_test`, every run | %s | %s |\n", runs, (lt_miss || nruns < 3 ? "no" : "yes")
  else print "| UDP ≥ 1.25× aquatic_udp under `aquatic_udp_load_test`, every run | not measured | no |"
  row("HTTP ≥ 4× aquatic_http", http, me, "aquatic_http", 4, 0)
  row("HTTP ≥ 1.3× opentracker", http, me, "opentracker", 1.3, 0)
  row("HTTP ≥ 70% of its floor", http, me, "floor", 0.7, 1)
  row("WebSocket ≥ 1.8× aquatic_ws", ws, me, "aquatic_ws", 1.8, 0)
  row("WebSocket ≥ 60% of its floor", ws, me, "floor", 0.6, 1)
  print ""
}' "$report"
