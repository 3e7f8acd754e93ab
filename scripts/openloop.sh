#!/bin/bash
# Open-loop latency: each responder pinned to CPU 0 in turn, warmed with
# WARM seconds (default 10) of the same load, then measured for DURATION
# seconds (default 20) by tracker-loadgen on CPU 1 at RATE requests/s.
# Prints the responder's CPU use over the measured run and the load's total
# line (sent, answered, per second, errors, invalid, timeouts, p50, p90,
# p99, p99.9 in µs), then how late the generator itself sent requests
# (`sent after due`: a tail there is the generator's, not the tracker's).
# A responder is a tracker binary, run with `-p 8000 --PROTOCOL`, or `floor`
# (UDP only). Run from the repository root after `cargo build --release`:
#   scripts/openloop.sh udp 138000 target/release/bittorrent-tracker floor
#   scripts/openloop.sh http 55000 target/release/bittorrent-tracker
# PRIO=fifo runs each responder under `chrt -f 10` (real-time priority; needs
# root or CAP_SYS_NICE), so that kernel threads and other tasks do not
# preempt it (see tuning.md).
set -euo pipefail
PROTOCOL=$1
RATE=$2
shift 2
WARM=${WARM:-10}
DURATION=${DURATION:-20}
BIN=target/release
EXTRA=()
[ "$PROTOCOL" = http ] && EXTRA=(--connections 1000)
PREFIX=()
case "${PRIO:-}" in
  "") ;;
  fifo) PREFIX=(chrt -f 10) ;;
  *) echo "PRIO: fifo or nothing, not $PRIO" >&2; exit 2 ;;
esac
hz=$(getconf CLK_TCK)
for responder in "$@"; do
  # A tracker cannot bind the port while connections from the last run linger.
  while ss -tan 'sport = :8000' | grep -q TIME-WAIT; do sleep 2; done
  if [ "$responder" = floor ]; then
    taskset -c 0 "${PREFIX[@]}" $BIN/tracker-loadgen floor --listen 127.0.0.1:8000 > /dev/null 2>&1 &
  else
    taskset -c 0 "${PREFIX[@]}" "$responder" -p 8000 "--$PROTOCOL" --listen-v4 127.0.0.1 --listen-v6 off -q &
  fi
  pid=$!
  sleep 1.5
  kill -0 $pid || { echo "$responder did not start" >&2; exit 1; }
  taskset -c 1 $BIN/tracker-loadgen "$PROTOCOL" --target 127.0.0.1:8000 --rate "$RATE" \
    --duration "$WARM" "${EXTRA[@]}" > /dev/null 2>&1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  total=$(taskset -c 1 $BIN/tracker-loadgen "$PROTOCOL" --target 127.0.0.1:8000 --rate "$RATE" \
    --duration "$DURATION" "${EXTRA[@]}" 2>&1 | grep -E '^(total|sent after)')
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  echo "$(basename "$responder")${PRIO:+ ($PRIO)}: cpu $(((t1 - t0) * 100 / hz / DURATION))% | $total"
  kill $pid
  wait $pid 2> /dev/null || true
  sleep 1
done
