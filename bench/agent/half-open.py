#!/usr/bin/env python3
"""Issue 10, item 5: open N half-open connections to an agent and time how long it keeps them.

    bench/agent/half-open.py HOST:PORT [N] [--half] [--sources=K]   # N defaults to 300

Each connection sends nothing (or, with --half, half a request head), from 127.0.0.2 (one "pod"),
or spread over K source addresses 127.0.0.2 … 127.0.0.(K+1) (K pods; the agent must listen on
loopback). While they are open, one request from 127.0.0.200 (another pod) is timed. Prints when
the first and the last were closed by the agent, and how many were refused at once (closed
within 2 s of their open, far before the 5 s header deadline; the agent's
pod_identity_connections_refused_total has the exact count). Gives up after 120 s: without a header-read deadline the connections would stay
open forever.
"""
import selectors
import socket
import sys
import time


def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    args = [a for a in sys.argv[2:] if not a.startswith("--")]
    n = int(args[0]) if args else 300
    half = "--half" in sys.argv
    sources = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--sources=")), 1)
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    opened = {}
    for i in range(n):
        s = socket.create_connection((host, int(port)),
                                     source_address=(f"127.0.0.{2 + i % sources}", 0))
        if half:
            s.sendall(b"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened[s] = time.monotonic()
    setup = time.monotonic() - start
    other_start = time.monotonic()
    with socket.create_connection((host, int(port)), source_address=("127.0.0.200", 0)) as o:
        o.sendall(b"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\n"
                  b"Connection: close\r\n\r\n")
        o.settimeout(10)
        status = o.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"another pod's request while they are open: {status!r} in "
          f"{(time.monotonic() - other_start) * 1000:.1f} ms")
    closed = []
    deadline = start + 120
    while len(closed) < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(64)
            except ConnectionResetError:
                data = b""
            if data:
                print(f"unexpected bytes: {data!r}")
            sel.unregister(s)
            closed.append(time.monotonic() - opened[s])
            s.close()
    total = time.monotonic() - start
    refused = sum(1 for c in closed if c < 2.0)
    print(f"{n} connections ({'half a header' if half else 'silent'}) from {sources} source "
          f"address(es), opened in {setup:.3f} s")
    if closed:
        print(f"closed by the agent: {len(closed)}; after {min(closed):.3f} s (first) "
              f"to {max(closed):.3f} s (last) from each one's open; all done {total:.3f} s "
              f"after the first open; refused at once: {refused}")
    print(f"still open after {total:.0f} s: {n - len(closed)}")


if __name__ == "__main__":
    main()
