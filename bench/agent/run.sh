#!/usr/bin/env bash
# Node agent benchmarks; results and their reading are in docs/BENCHMARKS.md ("Node agent").
#
#   bench/agent/run.sh            # everything, ~6 minutes plus waiting for load < 1.5
#   bench/agent/run.sh idle|wrk|rss|cold|burst
#
# Starts `podid dev` (control plane + its own agent, used only for the node key), creates a role
# and an association for default/bench-sa, then runs a *standalone* agent on 127.0.0.1 — the
# `podid-agent` binary built with the `release-agent` profile, a static glibc and its start-up
# functions ordered first (docs/agent.md), or whatever PODID_AGENT_CMD says
# (e.g. PODID_AGENT_CMD="target/release/podid agent" for the all-in-one binary) — with the
# per-listener rate limit raised out of the way (--rate-limit/--rate-limit-burst 100000000) so
# that the agent's own speed is measured, not the limiter. Everything listens on loopback only
# and is stopped at the end. Needs wrk and nginx (apt-get install -y wrk nginx) and the aws CLI
# (AWS env: python3 -m venv /tmp/bv && /tmp/bv/bin/pip install awscli==1.46.3). `idle` needs
# neither the control plane nor those tools.
set -euo pipefail

STEP=${1:-all}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PODID_BIN:-$ROOT/target/release/podid}
AGENT_BIN=${PODID_AGENT_BIN:-$ROOT/target/x86_64-unknown-linux-gnu/release-agent/podid-agent}
# shellcheck disable=SC2206 # a command and its leading arguments, split on spaces
AGENT_CMD=(${PODID_AGENT_CMD:-$AGENT_BIN})
LOADGEN=$ROOT/bench/agent/target/release/podid-agent-loadgen
AWS=${AWS:-$(command -v aws || echo /tmp/bv/bin/aws)}
SERVER_PORT=${SERVER_PORT:-18480}
AGENT_PORT=${AGENT_PORT:-18490}
PROBE_PORT=$((AGENT_PORT + 1))
METRICS_PORT=$((AGENT_PORT + 2))
NGINX_PORT=${NGINX_PORT:-18495}
WRK_SECONDS=${WRK_SECONDS:-15}
MAX_LOAD=${MAX_LOAD:-1.5}
LOAD_WAIT_SECONDS=${LOAD_WAIT_SECONDS:-900}
RATE=100000000
ORDER_FILE=$ROOT/crates/podid-agent-cli/startup.order
ORDER_FLAG="-C link-arg=-Wl,--symbol-ordering-file=$ORDER_FILE"

WORK=$(mktemp -d /tmp/podid-agent-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers (www-data) read $WORK/www
PIDS=()
AGENT_PID=
cleanup() {
  for pid in "${PIDS[@]}" $AGENT_PID; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# 500 pods x 3 connections at once, plus the agent's upstream connections.
ulimit -n 20000

log() { printf '\n== %s\n' "$*"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
wait_load() {
  local waited=0
  while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
    if ((waited >= LOAD_WAIT_SECONDS)); then
      echo "WARNING: load still $(load1) after ${waited}s; measuring anyway"
      break
    fi
    sleep 10
    waited=$((waited + 10))
  done
  echo "uptime before: $(uptime)"
}

log "build (release; the agent with the release-agent profile)"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  [[ $STEP == idle ]] || (cd "$ROOT" && cargo build --release --bin podid)
  # The agent as a DaemonSet image would ship it: size profile, glibc linked statically, the
  # functions run from start to idle placed together (bench/agent/startup-order.sh).
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static $ORDER_FLAG" \
    cargo build --profile release-agent -p podid-agent-cli --target x86_64-unknown-linux-gnu)
  [[ $STEP == idle ]] ||
    (cd "$ROOT/bench/agent" && CARGO_TARGET_DIR="$ROOT/bench/agent/target" cargo build --release)
fi
nproc
"${AGENT_CMD[@]}" --version

# status PID: the memory lines of /proc/PID/status on one line.
status() { grep -E '^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM|Threads)' "/proc/$1/status" | tr -s ' \t' ' ' | paste -sd' '; }
# mapped PID: resident KiB per mapped file (the binary, each shared library) and anonymous.
mapped() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) } /^Rss:/ { rss[name] += $2 }
       END { for (k in rss) if (rss[k] > 0) printf "%8d KiB  %s\n", rss[k], k }' "/proc/$1/smaps" | sort -rn
}

# step_idle: a fresh agent with its real flags and no traffic (no control plane needed: nothing
# is fetched until a pod asks), three times; then the binary's size.
step_idle() {
  log "0. idle: ${AGENT_CMD[*]}"
  local port=$((AGENT_PORT + 10)) pid
  for run in 1 2 3; do
    AWS_ACCESS_KEY_ID=AKIAIDLE AWS_SECRET_ACCESS_KEY=idle PODID_LOG_FORMAT=json PODID_VERBOSITY=warn \
      "${AGENT_CMD[@]}" --cluster-name dev --endpoint "http://127.0.0.1:$SERVER_PORT" \
      -b 127.0.0.1 -p "$port" --probe-port $((port + 1)) \
      --metrics-address 127.0.0.1 --metrics-port $((port + 2)) \
      --max-cache-size 2000 --state-dir "$WORK/idle-state" --region us-east-1 2>>"$WORK/idle.log" &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((port + 1))/healthz" >/dev/null && break; sleep 0.1; done
    sleep 3
    echo "run $run: $(status "$pid")"
    [[ $run == 1 ]] && mapped "$pid"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
  local file=${AGENT_CMD[0]}
  echo "binary: $(stat -c %s "$file") bytes ($file)"
  # A stale ordering file (new dependency versions or toolchain) names functions that are gone.
  local listed present
  listed=$(grep -v '^#' "$ORDER_FILE" | LC_ALL=C sort -u)
  present=$({ nm --defined-only "$file" 2>/dev/null || true; } | awk '{ print $3 }' | LC_ALL=C sort -u |
    LC_ALL=C comm -12 - <(echo "$listed") | wc -l)
  echo "startup.order: $present of $(wc -l <<<"$listed") listed functions are in the binary"
  size -A "$file" | awk '$1 == ".text" || $1 == ".rodata" || $1 == ".eh_frame" || $1 == ".gcc_except_table" { printf "  %-18s %9d\n", $1, $2 }'
}
if [[ $STEP == idle ]]; then
  step_idle
  exit 0
fi

log "podid dev on 127.0.0.1:$SERVER_PORT"
DATA=$WORK/dev
"$BIN" dev --data-dir "$DATA" --listen "127.0.0.1:$SERVER_PORT" --agent-port $((SERVER_PORT + 1)) \
  --agent-probe-port $((SERVER_PORT + 2)) --agent-metrics-port $((SERVER_PORT + 3)) \
  >"$WORK/dev.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do [[ -s $DATA/dev.env && -s $DATA/node-credentials ]] && break; sleep 0.2; done
sleep 0.5
set -a; source "$DATA/dev.env"; set +a
export AWS_MAX_ATTEMPTS=1 AWS_PAGER=
TRUST='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}'
ROLE_ARN=$("$AWS" iam create-role --role-name bench-role --assume-role-policy-document "$TRUST" \
  --query Role.Arn --output text)
"$AWS" eks create-pod-identity-association --cluster-name dev --namespace default \
  --service-account bench-sa --role-arn "$ROLE_ARN" --output text --query association.associationId

# start_agent MAX_CACHE: a fresh standalone agent; sets AGENT_PID.
start_agent() {
  [[ -n $AGENT_PID ]] && { kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; }
  AWS_SHARED_CREDENTIALS_FILE=$DATA/node-credentials AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= \
    PODID_LOG_FORMAT=json PODID_VERBOSITY=warn \
    "${AGENT_CMD[@]}" --cluster-name dev --endpoint "http://127.0.0.1:$SERVER_PORT" \
    -b 127.0.0.1 -p "$AGENT_PORT" --probe-port "$PROBE_PORT" \
    --metrics-address 127.0.0.1 --metrics-port "$METRICS_PORT" \
    --max-cache-size "$1" --rate-limit $RATE --rate-limit-burst $RATE \
    --state-dir "$WORK/agent-state" --region us-east-1 >>"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PROBE_PORT/healthz" >/dev/null && break; sleep 0.1; done
  sleep 2 # settle before any RSS reading
}
loadgen() {
  "$LOADGEN" --data-dir "$DATA" --agent "http://127.0.0.1:$AGENT_PORT/v1/credentials" \
    --metrics "http://127.0.0.1:$METRICS_PORT/metrics" "$@"
}
# cpu_ticks PID...: user and system clock ticks (1/100 s) used so far by these processes.
cpu_ticks() {
  local u=0 s=0 f
  for pid in "$@"; do
    read -ra f <"/proc/$pid/stat"
    u=$((u + f[13])) s=$((s + f[14]))
  done
  echo "$u $s"
}
counters() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^pod_identity_(cache_state_total|upstream_calls_total|http_response_total)'; }

step_wrk() {
  log "1. cache hits: wrk, agent vs nginx (static copy of the same JSON)"
  start_agent 2000
  local token
  token=$("$BIN" token --data-dir "$DATA" --namespace default --service-account bench-sa \
    --pod-name wrk-pod --pod-uid 00000000-0000-4000-8000-00000000a001)
  mkdir -p "$WORK/www/v1" "$WORK/nginx"
  curl -sf -H "Authorization: $token" "http://127.0.0.1:$AGENT_PORT/v1/credentials" >"$WORK/www/v1/credentials"
  chmod -R a+rX "$WORK/www"
  echo "response body: $(wc -c <"$WORK/www/v1/credentials") bytes"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  # Keep the file's descriptor open between requests (no open/fstat/close per request): the
  # strongest plain static-file setup, so the baseline is not handicapped.
  open_file_cache max=16 inactive=60s;
  types { }
  default_type application/json;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
CONF
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
  local nginx_pid=$!
  PIDS+=($nginx_pid)
  sleep 1
  curl -sf "http://127.0.0.1:$NGINX_PORT/v1/credentials" | cmp - "$WORK/www/v1/credentials"
  echo "nginx serves the identical body"
  wait_load
  local agent_url="http://127.0.0.1:$AGENT_PORT/v1/credentials"
  local nginx_url="http://127.0.0.1:$NGINX_PORT/v1/credentials"
  wrk -t2 -c64 -d3s -H "Authorization: $token" "$agent_url" >/dev/null # warm-up
  wrk -t2 -c64 -d3s -H "Authorization: $token" "$nginx_url" >/dev/null
  counters | tee "$WORK/before.txt"
  local nginx_workers
  nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
  for round in 1 2; do
    for target in nginx agent; do
      local url=$nginx_url pids=$nginx_workers
      [[ $target == agent ]] && url=$agent_url pids=$AGENT_PID
      echo "-- round $round: $target"
      echo "\$ wrk -t2 -c64 -d${WRK_SECONDS}s --latency -H \"Authorization: \$TOKEN\" $url"
      local before after out
      # shellcheck disable=SC2086 # $pids is a list
      before=$(cpu_ticks $pids)
      out=$(wrk -t2 -c64 -d"${WRK_SECONDS}s" --latency -H "Authorization: $token" "$url")
      # shellcheck disable=SC2086
      after=$(cpu_ticks $pids)
      grep -E 'Latency  |50%|90%|99%|Requests/sec|requests in|Non-2xx|Socket errors' <<<"$out"
      local requests
      requests=$(awk '/requests in/ { print $1 }' <<<"$out")
      awk -v b="$before" -v a="$after" -v n="$requests" -v t="$target" 'BEGIN {
        split(b, x, " "); split(a, y, " "); u = (y[1] - x[1]) * 10000 / n; s = (y[2] - x[2]) * 10000 / n
        printf "%s CPU per request: user %.1f us + system %.1f us = %.1f us\n", t, u, s, u + s }'
    done
  done
  echo "uptime after: $(uptime)"
  echo "agent counters after the wrk runs (misses must not have grown; hits ~ requests):"
  counters
  kill "$nginx_pid"
}

step_rss() {
  log "2. RSS: idle, and with 2,000 and 10,000 cached pods (fresh agent each)"
  for pods in 2000 10000; do
    start_agent $((pods + 16))
    echo "-- agent pid $AGENT_PID, --max-cache-size $((pods + 16)); /proc/$AGENT_PID/status:"
    status "$AGENT_PID"
    wait_load
    loadgen fill --pods "$pods" --pid "$AGENT_PID"
    echo "uptime after: $(uptime)"
  done
}

step_cold() {
  log "3. cold misses: 500 new pods, one after another"
  start_agent 2000
  wait_load
  loadgen cold --pods 500
  echo "uptime after: $(uptime)"
}

step_burst() {
  log "4. burst of 500 new pods x 3 concurrent requests, then all 500 rotate their token"
  start_agent 2000
  wait_load
  loadgen burst --pods 500 --per-pod 3
  echo "uptime after: $(uptime)"
  counters
}

case $STEP in
  all) step_idle; step_wrk; step_rss; step_cold; step_burst ;;
  wrk | rss | cold | burst) "step_$STEP" ;;
  *) echo "usage: $0 [all|idle|wrk|rss|cold|burst]" >&2; exit 64 ;;
esac
