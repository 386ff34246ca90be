#!/usr/bin/env python3
"""Issue 10, item 5: open N half-open connections to an agent and time how long it keeps them.

    bench/agent/half-open.py HOST:PORT [N] [--half]   # N defaults to 300

Each connection sends nothing (or, with --half, half a request head). Prints when the first and
the last were closed by the agent, and how many were refused at once (closed within 50 ms). Gives
up after 120 s: without a header-read deadline the connections would stay open forever.
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
    sel = selectors.DefaultSelector()
    start = time.monotonic()
    opened = {}
    for i in range(n):
        s = socket.create_connection((host, int(port)))
        if half:
            s.sendall(b"GET /v1/credentials HTTP/1.1\r\nHost: 169.254.170.23\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        opened[s] = time.monotonic()
    setup = time.monotonic() - start
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
    refused = sum(1 for c in closed if c < 0.05)
    print(f"{n} connections ({'half a header' if half else 'silent'}), opened in {setup:.3f} s")
    if closed:
        print(f"closed by the agent: {len(closed)}; after {min(closed):.3f} s (first) "
              f"to {max(closed):.3f} s (last) from each one's open; all done {total:.3f} s "
              f"after the first open; refused at once: {refused}")
    print(f"still open after {total:.0f} s: {n - len(closed)}")


if __name__ == "__main__":
    main()
