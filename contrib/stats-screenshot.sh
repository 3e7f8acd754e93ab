#!/bin/bash
# A screenshot of the tracker's /stats page under load, as a browser shows it.
#
# Builds the release tracker and tracker-loadgen (if not up to date), starts
# the tracker on 127.0.0.1:$PORT with HTTP, UDP and WebSocket, loads it from
# tracker-loadgen (UDP, then HTTP, then WebSocket: about 70 s, so the chart
# has several of its samples, one every 10 s), has headless Chromium take a
# screenshot of http://127.0.0.1:$PORT/stats, stops the tracker, and prints
# the PNG's path. Nothing leaves 127.0.0.1.
#
#   contrib/stats-screenshot.sh [OUT.png]      # default /tmp/stats-page.png
#
# Environment: CARGO_TARGET_DIR (default target), PORT (8123), UDP_SECS (30),
# HTTP_SECS (20), WS_SECS (20). Needs Chromium (Debian: apt-get install
# chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-/tmp/stats-page.png}")
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release
PORT=${PORT:-8123}
UDP_SECS=${UDP_SECS:-30}
HTTP_SECS=${HTTP_SECS:-20}
WS_SECS=${WS_SECS:-20}
ADDR=127.0.0.1:$PORT

CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $CHROMIUM ]]; then
  echo "no Chromium: apt-get install chromium" >&2
  exit 1
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "something already listens on $ADDR: set PORT" >&2
  exit 1
fi

CARGO_TARGET_DIR=$TARGET nice -n 19 cargo build --release --quiet \
  --bin bittorrent-tracker --bin tracker-loadgen

WORK=$(mktemp -d /tmp/stats-screenshot.XXXXXX)
"$BIN/bittorrent-tracker" -p "$PORT" --listen-v4 127.0.0.1 --listen-v6 off \
  >"$WORK/tracker.log" 2>&1 &
TRACKER=$!
# On the way out, stop the tracker (by its PID) and wait for it.
trap 'kill $TRACKER 2>/dev/null || true; wait $TRACKER 2>/dev/null || true' EXIT

deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
  if ! kill -0 $TRACKER 2>/dev/null || ((SECONDS > deadline)); then
    echo "the tracker did not start; its log:" >&2
    cat "$WORK/tracker.log" >&2
    exit 1
  fi
  sleep 0.2
done

# Each load stops by itself after its --duration; `timeout` bounds it anyway.
load() {
  local protocol=$1 secs=$2
  shift 2
  echo "$protocol load for $secs s" >&2
  timeout --kill-after=5 $((secs + 15)) "$BIN/tracker-loadgen" "$protocol" \
    --target "$ADDR" --duration "$secs" --quiet "$@" >>"$WORK/load.log" 2>&1 ||
    echo "tracker-loadgen $protocol ended with status $? (see $WORK/load.log)" >&2
}
load udp "$UDP_SECS" --rate 60000
load http "$HTTP_SECS" --rate 12000 --connections 200
load ws "$WS_SECS" --connections 20

# No network but loopback: every other host name resolves to nothing.
timeout --kill-after=5 60 "$CHROMIUM" --headless=new --no-sandbox --disable-gpu \
  --hide-scrollbars --window-size=1200,1400 \
  --user-data-dir="$WORK/chromium" --no-first-run --no-default-browser-check \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-default-apps --disable-extensions --disable-domain-reliability \
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --screenshot="$OUT" "http://$ADDR/stats" >"$WORK/chromium.log" 2>&1 || {
  echo "Chromium failed; its output:" >&2
  cat "$WORK/chromium.log" >&2
  exit 1
}
[[ -s $OUT ]] || {
  echo "no screenshot at $OUT" >&2
  exit 1
}
echo "$OUT"
