#!/bin/bash
# Soak: the release tracker pinned to CPU 0, one protocol's load from CPU 1
# with 1% garbage, for DURATION seconds (default 600). Every 30 s it prints
# the tracker's CPU use and resident memory; at the end, the load's report.
# Run from the repository root after `cargo build --release`:
#   scripts/soak.sh udp --rate 150000
#   scripts/soak.sh http --rate 87000 --connections 1000
#   scripts/soak.sh ws --connections 9
set -euo pipefail
PROTOCOL=$1
shift
DURATION=${DURATION:-600}
PORT=${PORT:-8000}
OUT=${OUT:-/tmp/soak-$PROTOCOL.json}
BIN=target/release
taskset -c 0 $BIN/bittorrent-tracker -p "$PORT" --listen-v4 127.0.0.1 --listen-v6 off -q &
TRACKER=$!
# On the way out, stop the tracker and wait until its port is free.
trap 'kill $TRACKER 2>/dev/null || true; wait $TRACKER 2>/dev/null || true' EXIT
sleep 1
kill -0 $TRACKER || { echo "the tracker did not start" >&2; exit 1; }
$BIN/tracker-loadgen "$PROTOCOL" --target "127.0.0.1:$PORT" --duration "$DURATION" --cpus 1 \
  --garbage 1 --quiet --json "$@" > "$OUT" &
LOAD=$!
hz=$(getconf CLK_TCK)
prev=$(awk '{print $14+$15}' /proc/$TRACKER/stat)
echo "seconds  tracker_cpu_%  rss_mib"
for ((t = 30; t <= DURATION; t += 30)); do
  sleep 30
  now=$(awk '{print $14+$15}' /proc/$TRACKER/stat)
  rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$TRACKER/status)
  printf "%7d  %13d  %7d\n" "$t" $(( (now - prev) * 100 / (30 * hz) )) "$rss"
  prev=$now
done
wait $LOAD
kill -0 $TRACKER && echo "tracker still running after $DURATION s"
python3 - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['protocol']} {r['mode']}, {r['seconds']:.0f} s")
for k in ['connect', 'announce', 'scrape', 'answer', 'garbage', 'total']:
    l = r[k]
    if l['sent']:
        print(f"{k:9} sent {l['sent']:>11} answered {l['answered']:>11} ({l['per_second']:.0f}/s) "
              f"errors {l['errors']} invalid {l['invalid']} timeouts {l['timeouts']} p99 {l['p99_us']} us")
print(f"late {r['late']}, not sent {r['not_sent']}")
PY
