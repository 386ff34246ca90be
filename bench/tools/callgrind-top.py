#!/usr/bin/env python3
"""Top functions of a callgrind profile, by self and by inclusive instruction count.

    callgrind-top.py PROFILE [--per N] [--top K] [--grep REGEX]

--per N divides every count by N (e.g. the number of issuances in the profiled run), so the
numbers read as instructions per issuance. callgrind_annotate 3.19 mixes inclusive call costs
into self costs for code inlined from other files (as Rust's is); this reads the format directly:
a cost line right after `calls=` is the callee's inclusive cost, every other cost line is self.
Inclusive = self + calls made (a recursive call is counted once, at its outermost frame).
"""
import argparse
import collections
import re
import sys


def parse(path):
    names = {}
    self_cost = collections.Counter()
    incl_calls = collections.defaultdict(collections.Counter)
    total = 0
    fn = None
    pending_call = None

    def name(spec):
        m = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_call is not None:
                    if pending_call != fn:
                        incl_calls[fn][pending_call] += cost
                    pending_call = None
                else:
                    self_cost[fn] += cost
                continue
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                pending_call = callee
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    incl = collections.Counter()
    for f, s in self_cost.items():
        incl[f] += s
    for f, calls in incl_calls.items():
        incl[f] += sum(calls.values())
    return total, self_cost, incl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--per", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--grep", default=None, help="only inclusive entries matching this regex")
    a = ap.parse_args()
    total, self_cost, incl = parse(a.profile)
    per = a.per
    print(f"total: {total:,} Ir = {total / per:,.0f} per item (per = {per:g})")
    print(f"\n-- self (top {a.top})")
    for f, c in self_cost.most_common(a.top):
        print(f"{c / per:12,.0f} {100 * c / total:5.1f} %  {f[:150]}")
    print(f"\n-- inclusive (top {a.top}{', matching ' + a.grep if a.grep else ''})")
    rx = re.compile(a.grep) if a.grep else None
    shown = 0
    for f, c in incl.most_common():
        if rx and not rx.search(f):
            continue
        print(f"{c / per:12,.0f} {100 * c / total:5.1f} %  {f[:150]}")
        shown += 1
        if shown >= a.top:
            break


if __name__ == "__main__":
    sys.exit(main())
