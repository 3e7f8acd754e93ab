#!/usr/bin/env bash
# Reruns every comparison in docs/benchmarks against every peer it can
# install, and writes a dated report with tables and charts:
#   docs/benchmarks/DATE-all.md and DATE-*.svg (DATE-2-... for a second run
#   that day), ending with each target of issue 22 and whether it is met
#   (scripts/benchmark-targets.sh)
#
#   scripts/benchmarks.sh                 # 3 rounds of 10 s each
#   ROUNDS=1 DURATION=3 OUT=/tmp/b scripts/benchmarks.sh   # a quick check of the script, elsewhere
#
# Peers, outside the repository (PEERS, default /tmp/tracker-peers):
#   aquatic_udp, aquatic_http, aquatic_ws,  cargo install (once; --locked pins a crate today's rustc refuses)
#   aquatic_udp_load_test
#   opentracker                             Debian's package (apt-get, as root),
#                                           with the workload's hashes as its whitelist
#   the reference JavaScript tracker        npm bittorrent-tracker@10.0.12
# Sections: UDP, HTTP and WebSocket closed loop, UDP open loop (latency),
# UDP under aquatic_udp_load_test, the memory of idle connections
# (tracker-loadgen idle), then the targets.
# A peer that cannot be installed is left out of the tables, and the report
# says so. Every tracker runs on CPU 0 (this one with one worker), the load
# on CPU 1; rounds alternate; the tables are medians. Everything listens on
# 127.0.0.1:8000 only, and every run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PEERS=${PEERS:-/tmp/tracker-peers}
OUT=${OUT:-docs/benchmarks}
# A report is not rewritten: a second run on one day is DATE-2, and so on.
DATE=$(date -u +%F)
if [ -e "$OUT/$DATE-all.md" ]; then
  n=2
  while [ -e "$OUT/$DATE-$n-all.md" ]; do n=$((n + 1)); done
  DATE=$DATE-$n
fi
REPORT=$OUT/$DATE-all.md
mkdir -p "$PEERS" "$OUT"
say() { echo "== $(date -u +%T) $*" >&2; }

say "building this tracker and tracker-loadgen (release)"
cargo build --release --quiet
BIN=$(mktemp -d)
cp target/release/bittorrent-tracker target/release/tracker-loadgen "$BIN/"
LG="$BIN/tracker-loadgen"
TRACKER="$BIN/bittorrent-tracker"

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$PEERS/bin/$1" ]; }
path_of() { if [ -x "$PEERS/bin/$1" ]; then echo "$PEERS/bin/$1"; else command -v "$1"; fi; }

if ! have aquatic_udp || ! have aquatic_http || ! have aquatic_ws || ! have aquatic_udp_load_test; then
  say "installing aquatic (cargo install, into $PEERS)"
  cargo install --quiet --root "$PEERS" aquatic_udp aquatic_http aquatic_ws aquatic_udp_load_test || true
fi
if ! have opentracker && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  say "installing opentracker (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker >/dev/null || true
fi
REF="$PEERS/node/node_modules/bittorrent-tracker/bin/cmd.js"
if [ ! -f "$REF" ] && command -v npm >/dev/null; then
  say "installing the reference tracker (npm)"
  mkdir -p "$PEERS/node"
  (cd "$PEERS/node" && npm install --silent --no-audit --no-fund bittorrent-tracker@10.0.12 >/dev/null) || true
fi

# aquatic's configurations: its defaults, on 127.0.0.1:8000.
aquatic_config() { # NAME
  local cfg="$PEERS/$1.toml"
  "$(path_of "$1")" -p > "$cfg"
  sed -i -E 's/^(\s*)address(_ipv4)? = .*/\1address\2 = "127.0.0.1:8000"/' "$cfg"
  echo "$cfg"
}

udp_trackers=(--tracker "bittorrent-tracker=$TRACKER -p 8000 --udp --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q")
http_trackers=(--tracker "bittorrent-tracker=$TRACKER -p 8000 --http --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q")
ws_trackers=(--tracker "bittorrent-tracker=$TRACKER -p 8000 --ws --ws-offer-rate 0 --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q")
open_trackers=("${udp_trackers[@]}")
for a in udp http ws; do
  if have "aquatic_$a"; then
    cfg=$(aquatic_config "aquatic_$a")
    eval "${a}_trackers+=(--tracker \"aquatic_$a=$(path_of "aquatic_$a") -c $cfg\")"
  else
    missing+=("aquatic_$a")
  fi
done
if have aquatic_udp; then open_trackers+=("${udp_trackers[2]}" "${udp_trackers[3]}"); fi
if have opentracker; then
  mkdir -p "$PEERS/opentracker"
  "$LG" hashes --torrents 1000000 > "$PEERS/opentracker/whitelist.txt"
  OT="$(path_of opentracker) -i 127.0.0.1 -d $PEERS/opentracker -w whitelist.txt"
  udp_trackers+=(--tracker "opentracker=$OT -P 8000 -p 8001")
  http_trackers+=(--tracker "opentracker=$OT -p 8000 -P 8001")
else
  missing+=(opentracker)
fi
if [ -f "$REF" ] && command -v node >/dev/null; then
  udp_trackers+=(--tracker "reference-js=node $REF -p 8000 --udp -q")
  http_trackers+=(--tracker "reference-js=node $REF -p 8000 --http -q")
  ws_trackers+=(--tracker "reference-js=node $REF -p 8000 --ws -q")
else
  missing+=("the reference JavaScript tracker")
fi
udp_trackers+=(--tracker "floor=$LG floor --listen 127.0.0.1:8000")
http_trackers+=(--tracker "floor=$LG floor --protocol http --listen 127.0.0.1:8000")
ws_trackers+=(--tracker "floor=$LG floor --protocol ws --listen 127.0.0.1:8000")

COMMON=(--tracker-cpus 0 --cpus 1 --rounds "$ROUNDS" --duration "$DURATION" --settle 2 --target 127.0.0.1:8000)

# A section of the report: its title, the command that made it (paths to
# the copies and peers shortened), its table, and its chart if it has one.
append() { # TITLE TABLE SVG|"" SUBCOMMAND ARGS...
  local title=$1 table=$2 svg=$3
  shift 3
  {
    echo "## $title"
    echo
    echo '```sh'
    printf 'tracker-loadgen'
    printf ' %q' "$@" | sed "s#$BIN/##g; s#$PEERS/##g"
    echo
    echo '```'
    echo
    echo "$table"
    echo
    if [ -n "$svg" ]; then
      echo "![$title]($svg)"
      echo
    fi
  } >> "$REPORT"
}

# One comparison: its command and table in the report, its chart beside it.
section() { # TITLE NAME ARGS...
  local title=$1 name=$2
  shift 2
  local svg="$DATE-$name.svg"
  say "$title"
  local table
  table=$(timeout 3600 "$LG" compare "${COMMON[@]}" --plot "$OUT/$svg" "$@")
  append "$title" "$table" "$svg" compare "${COMMON[@]}" --plot "$svg" "$@"
}

# What idle connections cost each tracker in memory; a tracker that fails
# is named in the report with its error instead of ending the script.
idle_section() { # TITLE ARGS...
  local title=$1
  shift
  local args=(--connections 10000 --tracker-cpus 0 --target 127.0.0.1:8000 "$@")
  say "$title"
  local table
  if ! table=$(timeout 1800 "$LG" idle "${args[@]}" 2>"$BIN/idle.err"); then
    table="Not measured: $(tail -n 1 "$BIN/idle.err")"
  fi
  append "$title" "$table" "" idle "${args[@]}"
}

{
  echo "# Every comparison, rerun ($DATE)"
  echo
  echo "Written by \`scripts/benchmarks.sh\` (ROUNDS=$ROUNDS, DURATION=$DURATION) at commit"
  echo "$(git rev-parse --short HEAD) on $(nproc) CPUs ($(uname -r)). Each tracker on CPU 0,"
  echo "this one with one worker; the load on CPU 1; rounds alternate; medians."
  echo "Peers run outside the repository: aquatic with its default configuration"
  echo "on 127.0.0.1:8000, Debian's opentracker with the workload's hashes as its"
  echo "whitelist, the reference tracker from npm. Memory is each tracker's peak"
  echo "resident memory in the UDP run."
  echo
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Left out (could not be installed here): ${missing[*]}."
    echo
  fi
} > "$REPORT"

section "UDP, closed loop" udp "${udp_trackers[@]}"
section "HTTP, 1,000 keep-alive connections" http --protocol http --connections 1000 "${http_trackers[@]}"
section "WebSocket, 1,000 connections with 5 offers" ws --protocol ws --connections 1000 --torrents 1000 "${ws_trackers[@]}"
section "UDP, open loop at 100,000 requests a second (latency)" udp-open --rate 100000 "${open_trackers[@]}"

# aquatic's own load generator against this tracker and aquatic_udp: each
# started fresh on CPU 0, the generator on CPU 1, runs alternating.
peak_rss_mib() { awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
aquatic_load_test_run() { # COMMAND... ; prints "RESPONSES_PER_S PEAK_RSS_MIB"
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local pid=$! rate rss
  sleep 2 # both answer well within this
  rate=$(timeout $((DURATION + 60)) taskset -c 1 "$(path_of aquatic_udp_load_test)" -c "$LT_CFG" 2>/dev/null |
    awk '/^Average responses per second:/ {printf "%d", $5}')
  rss=$(peak_rss_mib "$pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "${rate:-0} $rss"
}
if have aquatic_udp_load_test && have aquatic_udp; then
  say "UDP under aquatic_udp_load_test"
  LT_CFG="$PEERS/aquatic_udp_load_test.toml"
  "$(path_of aquatic_udp_load_test)" -p > "$LT_CFG"
  sed -i -E 's/^server_address = .*/server_address = "127.0.0.1:8000"/; s/^duration = .*/duration = '"$DURATION"'/;
    s/^weight_connect = .*/weight_connect = 0/; s/^weight_announce = .*/weight_announce = 100/' "$LT_CFG"
  AQ_CFG=$(aquatic_config aquatic_udp)
  ours=() theirs=() rows=()
  for run in $(seq 1 "$ROUNDS"); do
    read -r a ma < <(aquatic_load_test_run "$TRACKER" -p 8000 --udp --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q)
    read -r b mb < <(aquatic_load_test_run "$(path_of aquatic_udp)" -c "$AQ_CFG")
    ours+=("$a") theirs+=("$b")
    rows+=("| $run | $a | $ma | $b | $mb | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b ? a / b : 0}') |")
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
  {
    echo "## UDP under aquatic_udp_load_test"
    echo
    echo "aquatic's own load generator ($("$(path_of aquatic_udp_load_test)" -v 2>/dev/null || echo aquatic_udp_load_test)), its defaults but for"
    echo "\`duration = $DURATION\`, \`weight_connect = 0\`, \`weight_announce = 100\` (scrape 1):"
    echo "each tracker started fresh on CPU 0, the generator on CPU 1, runs"
    echo "alternating. Its figure is its own: average responses a second."
    echo
    echo '```sh'
    echo "taskset -c 0 bittorrent-tracker -p 8000 --udp --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q   # or: aquatic_udp -c aquatic_udp.toml"
    echo "taskset -c 1 aquatic_udp_load_test -c aquatic_udp_load_test.toml"
    echo '```'
    echo
    echo "| run | bittorrent-tracker responses/s | peak RSS MiB | aquatic_udp responses/s | peak RSS MiB | ratio |"
    echo "|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo "| median | $(med "${ours[@]}") | | $(med "${theirs[@]}") | | $(awk -v a="$(med "${ours[@]}")" -v b="$(med "${theirs[@]}")" 'BEGIN {printf "%.2f", b ? a / b : 0}') |"
    echo
  } >> "$REPORT"
else
  echo "aquatic_udp_load_test or aquatic_udp could not be installed: its comparison is left out." >> "$REPORT"
fi

# Idle connections: browsers hold their WebSocket open between announces.
# Over HTTP, opentracker closes each connection after its answer and the
# reference's server (Node) drops a keep-alive connection after 5 s, before
# 10,000 are open: neither holds idle connections to measure.
idle_ws=(--tracker "bittorrent-tracker=$TRACKER -p 8000 --ws --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q")
idle_http=(--tracker "bittorrent-tracker=$TRACKER -p 8000 --http --workers 1 --listen-v4 127.0.0.1 --listen-v6 off -q")
if have aquatic_ws; then idle_ws+=(--tracker "aquatic_ws=$(path_of aquatic_ws) -c $(aquatic_config aquatic_ws)"); fi
if have aquatic_http; then idle_http+=(--tracker "aquatic_http=$(path_of aquatic_http) -c $(aquatic_config aquatic_http)"); fi
if [ -f "$REF" ] && command -v node >/dev/null; then
  idle_ws+=(--tracker "reference-js=node $REF -p 8000 --ws -q")
fi
idle_section "Memory of 10,000 idle WebSocket connections" --protocol ws "${idle_ws[@]}"
idle_section "Memory of 10,000 idle HTTP keep-alive connections" --protocol http "${idle_http[@]}"

scripts/benchmark-targets.sh "$REPORT" >> "$REPORT"

rm -rf "$BIN"
say "report: $REPORT"
