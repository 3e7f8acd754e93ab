#!/bin/bash
# Soak: the tracker on CPU 0 under UDP, HTTP and WebSocket load at once from
# CPU 1, with 1% garbage in each, for DURATION seconds (default 600). Samples
# the tracker's CPU use and resident memory every 30 s, then prints each
# load's report. Run from the repository root after `cargo build --release`.
set -euo pipefail
DURATION=${DURATION:-600}
UDP_RATE=${UDP_RATE:-100000}
HTTP_RATE=${HTTP_RATE:-20000}
WS_CONNECTIONS=${WS_CONNECTIONS:-20}
PORT=${PORT:-8000}
OUT=${OUT:-/tmp/soak}
mkdir -p "$OUT"
BIN=target/release
taskset -c 0 $BIN/bittorrent-tracker -p $PORT --listen-v4 127.0.0.1 --listen-v6 off -q &
TRACKER=$!
trap 'kill $TRACKER 2>/dev/null || true' EXIT
sleep 1
LOAD="--target 127.0.0.1:$PORT --duration $DURATION --cpus 1 --garbage 1 --quiet --json"
$BIN/tracker-loadgen udp $LOAD --rate $UDP_RATE > "$OUT/udp.json" &
U=$!
$BIN/tracker-loadgen http $LOAD --rate $HTTP_RATE --connections 500 > "$OUT/http.json" &
H=$!
$BIN/tracker-loadgen ws $LOAD --connections $WS_CONNECTIONS > "$OUT/ws.json" &
W=$!
hz=$(getconf CLK_TCK)
prev=$(awk '{print $14+$15}' /proc/$TRACKER/stat)
echo "time_s cpu_percent rss_mib"
for ((t = 30; t <= DURATION; t += 30)); do
  sleep 30
  now=$(awk '{print $14+$15}' /proc/$TRACKER/stat)
  rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$TRACKER/status)
  echo "$t $(( (now - prev) * 100 / (30 * hz) )) $rss"
  prev=$now
done
wait $U $H $W
kill -0 $TRACKER && echo "tracker still running (pid $TRACKER)"
for p in udp http ws; do
  echo "== $p"
  python3 -c "
import json,sys
r=json.load(open('$OUT/$p.json'))
for k in ['announce','scrape','answer','garbage','total']:
    l=r[k]
    if l['sent']: print(f\"{k:9} sent {l['sent']:>10} answered {l['answered']:>10} errors {l['errors']} invalid {l['invalid']} timeouts {l['timeouts']} p99 {l['p99_us']} us\")
print('late', r['late'], 'not sent', r['not_sent'])
"
done
