#!/usr/bin/env bash
# Reproduces the control-plane benchmarks of docs/BENCHMARKS.md ("Control plane: associations"
# and "Credential issuance"). Everything runs on loopback; every server it starts it stops.
#
#   bench/run-control-plane.sh [index] [associations] [issuance] [moto]   (default: all four)
#
# Environment:
#   ASSOC_COUNT=100000       associations created through the API
#   ISSUE_TOKENS=20000       pre-minted tokens (distinct pod uids) for the issuance run
#   ISSUE_SAS=1000           service accounts (associations) they are spread over
#   NO_CLIENT_TOKEN=1        create associations without clientRequestToken (SDKs always send one)
#   MOTO_COUNT=5000          moto AssumeRole calls
#   CONCURRENCY=32           requests in flight
#   PODID_BIN=path           the podid binary to benchmark (default: the release build)
#   PIN=1                    pin each server to CPU 0 and the load generator to CPU 1 (default 1)
#   PERF=1                   record `perf` samples of the server during the issuance run
#   CALLGRIND=1              run the issuance server under callgrind: instruction counts of the
#                            measured run (use ISSUE_TOKENS=2000; ~50x slower)
#   CALLGRIND_KEEP=file      keep the callgrind profile there
#   VENV=bench/.venv         where moto is pip-installed
#   PODID_BENCH_SIZES=100000,1000000   sizes for the in-memory index bench
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ASSOC_COUNT="${ASSOC_COUNT:-100000}"
ISSUE_TOKENS="${ISSUE_TOKENS:-20000}"
ISSUE_SAS="${ISSUE_SAS:-1000}"
MOTO_COUNT="${MOTO_COUNT:-5000}"
CONCURRENCY="${CONCURRENCY:-32}"
PIN="${PIN:-1}"
PERF="${PERF:-0}"
CALLGRIND="${CALLGRIND:-0}"
VENV="${VENV:-$ROOT/bench/.venv}"
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(index associations issuance moto)
WORK="$(mktemp -d /tmp/podid-bench.XXXXXX)"
PODID="${PODID_BIN:-$CARGO_TARGET_DIR/release/podid}"
LOADGEN="$CARGO_TARGET_DIR/release/podid-loadgen"
SERVER_PID=""
server_prefix=()

server_cpu=(); client_cpu=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
fi

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
  for _ in $(seq 1 1200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null || curl -sS -o /dev/null -w '%{http_code}' "$1" 2>/dev/null | grep -q '^[1-4]'; then
      return 0
    fi
    sleep 0.1
  done
  echo "no answer from $1" >&2; return 1
}

start_podid() { # data dir
  local port; port="$(free_port)"
  mkdir -p "$1"
  "${server_cpu[@]}" "${server_prefix[@]}" "$PODID" server --listen "127.0.0.1:$port" --data-dir "$1" \
    --max-associations-per-cluster 1000000 >"$1/server.log" 2>&1 &
  SERVER_PID=$!
  ENDPOINT="http://127.0.0.1:$port"
  wait_http "$ENDPOINT/healthz"
}

# utime + stime of the server process, in clock ticks.
server_cpu_ticks() { awk '{print $14 + $15, $14, $15}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0 0 0; }
# "name ticks" per server thread (threads of the same name summed).
server_thread_ticks() {
  for t in /proc/"$SERVER_PID"/task/*; do
    printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" "$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
  done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}'
}
# The server's CPU over the measured run, per issuance and per CPU-second, and by thread.
report_server_cpu() { # summary line, ticks before, per-thread ticks before
  local ok hz
  ok="$(sed -n 's/.*: \([0-9]*\) ok of.*/\1/p' <<<"$1")"
  hz="$(getconf CLK_TCK)"
  awk -v ok="$ok" -v hz="$hz" -v before="$2" -v after="$(server_cpu_ticks)" 'BEGIN {
    split(before, b, " "); split(after, a, " ")
    s = (a[1] - b[1]) / hz; u = (a[2] - b[2]) / hz; k = (a[3] - b[3]) / hz
    if (s > 0 && ok > 0) printf "server CPU during the run: %.2f s (user %.2f + sys %.2f) for %d issuances = %.1f us each = %.0f issuances per CPU-second\n", s, u, k, ok, s * 1e6 / ok, ok / s }'
  join <(sort <<<"$3") <(server_thread_ticks | sort) | awk -v hz="$hz" '
    { d = $3 - $2; if (d > 0) printf "  thread %-20s %.2f s\n", $1, d / hz }'
}

rss_of_server() { awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "?"; }

echo "== machine"
date -u +"date: %Y-%m-%dT%H:%M:%SZ"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc); mem: $(free -g | awk '/Mem:/ {print $2}') GiB; kernel $(uname -r)"
echo "rustc: $(rustc -V); pinning: ${server_cpu[*]:-none} (server) / ${client_cpu[*]:-none} (load generator)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) uncommitted paths"
echo "load before: $(uptime)"

echo "== build (release)"
cargo build --release --bin podid 2>&1 | tail -1
cargo build --release --manifest-path bench/control-plane/Cargo.toml 2>&1 | tail -1

for step in "${STEPS[@]}"; do
  case "$step" in
  index)
    echo "== in-memory association index (cargo bench -p podid-server --features bench-support --bench association_index)"
    cargo bench -p podid-server --features bench-support --bench association_index 2>&1 | grep -v '^ *\(Compiling\|Finished\|Running\)'
    ;;
  associations)
    echo "== associations through the EKS API: $ASSOC_COUNT creates, $CONCURRENCY in flight, then list all"
    start_podid "$WORK/assoc"
    "${client_cpu[@]}" "$LOADGEN" --endpoint "$ENDPOINT" associations \
      --admin-credentials "$WORK/assoc/admin-credentials" --count "$ASSOC_COUNT" --concurrency "$CONCURRENCY" \
      ${NO_CLIENT_TOKEN:+--no-client-token}
    echo "server RSS after: $(rss_of_server); database: $(du -sh "$WORK/assoc" | cut -f1)"
    cleanup
    ;;
  issuance)
    echo "== credential issuance through EKS Auth: $ISSUE_TOKENS tokens, $ISSUE_SAS service accounts, $CONCURRENCY in flight"
    if [ "$CALLGRIND" = 1 ]; then
      # Instruction counts instead of seconds: the same for the same binary and inputs whatever
      # else the machine runs. The counters are zeroed when the measured run starts and dumped
      # when it ends, so they hold exactly the measured issuances (and the audit writes they
      # caused, flushed before the dump).
      server_prefix=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        --dump-instr=no --collect-systime=no)
    else
      server_prefix=()
    fi
    start_podid "$WORK/issue"
    verify_cpu=()
    [ ${#server_cpu[@]} -gt 0 ] && verify_cpu=(--verify-cpu 0)
    # With PERF=1, samples of the server are taken for 3 s once the measured run starts (perf
    # costs the server some CPU: take rates from a run without it).
    "${client_cpu[@]}" "$LOADGEN" --endpoint "$ENDPOINT" issuance \
      --admin-credentials "$WORK/issue/admin-credentials" --tokens "$ISSUE_TOKENS" \
      --service-accounts "$ISSUE_SAS" --concurrency "$CONCURRENCY" "${verify_cpu[@]}" |
      {
        while IFS= read -r line; do
          echo "$line"
          case "$line" in
          "measured run starts"*)
            cpu_before="$(server_cpu_ticks)"
            threads_before="$(server_thread_ticks)"
            [ "$CALLGRIND" = 1 ] && callgrind_control -z "$SERVER_PID" >/dev/null
            if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
              perf record -F 999 -e cpu-clock -p "$SERVER_PID" -o "$WORK/perf.data" -- sleep 3 >/dev/null 2>&1 &
            fi
            ;;
          issuance*)
            # One flush interval, so the audit batches of the last issuances are committed.
            sleep 0.3
            [ "$CALLGRIND" = 1 ] && callgrind_control -d "$SERVER_PID" >/dev/null
            report_server_cpu "$line" "$cpu_before" "$threads_before"
            ;;
          esac
        done
        wait # for perf, if it was started
      }
    cleanup
    if [ -f "$WORK/perf.data" ]; then
      echo "-- perf (server, self time, top 40)"
      perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
        | grep -v "^#" | grep "%" | head -40 || true
    fi
    if [ "$CALLGRIND" = 1 ]; then
      # The dump callgrind_control asked for is the file with the highest suffix.
      out="$(ls -1 "$WORK"/callgrind.out.* 2>/dev/null | sort -t. -k3 -n | tail -1 || true)"
      echo "-- callgrind (server, measured run only; instructions per issuance)"
      python3 "$ROOT/bench/tools/callgrind-top.py" "$out" --per "$ISSUE_TOKENS" --top 40 \
        --grep '^podid|sqlite3_step|tracing_core::event::Event::dispatch|aws_sigv4::|^malloc$|^free$|hyper::proto|EVP_DigestVerify$' || true
      if [ -n "${CALLGRIND_KEEP:-}" ]; then cp "$out" "$CALLGRIND_KEEP"; echo "kept as $CALLGRIND_KEEP"; fi
    fi
    ;;
  moto)
    echo "== moto STS AssumeRole: $MOTO_COUNT calls, $CONCURRENCY in flight"
    if [ ! -x "$VENV/bin/moto_server" ]; then
      python3 -m venv "$VENV"
      "$VENV/bin/pip" install -q 'moto[server]'
    fi
    echo "moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)')"
    port="$(free_port)"
    "${server_cpu[@]}" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
    SERVER_PID=$!
    ENDPOINT="http://127.0.0.1:$port"
    wait_http "$ENDPOINT/moto-api/"
    "${client_cpu[@]}" "$LOADGEN" --endpoint "$ENDPOINT" moto-sts --count "$MOTO_COUNT" --concurrency "$CONCURRENCY"
    cleanup
    ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
  esac
  echo "load: $(uptime)"
done
rm -rf "$WORK"
