#!/usr/bin/python3
"""bench/diag/latency-ab.py LABEL=MAILREDIR... - end of DATA -> 250 at C=1 for several
mailredir binaries, with and without a route, rounds taking turns, beside the
fsync cycle of the same moment: for finding what the tail at C=1 comes from.
Reuses the pieces of bench/run.  Run as root inside `unshare --net` (ip link set lo up)."""
import os
import shutil
import sys
import tempfile

from benchrun import B, start_mailredir


ROUNDS, N = 3, 500
work = tempfile.mkdtemp(prefix="mailredir-latency-ab.")
try:
    variants = []
    for i, arg in enumerate(sys.argv[1:]):
        label, _, path = arg.partition("=")
        copy = os.path.join(work, f"bin{i}")
        shutil.copy2(path, copy)
        variants.append((label, copy))
    for rnd in range(ROUNDS):
        probe = B.fsync_probe(os.path.join(work, f"probe{rnd}"), 2)
        print(f"round {rnd + 1}: fsync cycle p50 {probe['cycle_p50_ms']:.2f} ms, p99 {probe['cycle_p99_ms']:.2f} ms")
        for label, binary in variants:
            for route in (False, True):
                r = start_mailredir(os.path.join(work, f"{label}-{route}-{rnd}"), binary, route)
                try:
                    B.smtp_source(r.port, 100, 8)
                    r.accepted = 100
                    if route:
                        r.sink.reached(r.accepted, 60)
                    lat = B.latency(r, N)
                    print(f"  {label:10} {'route' if route else 'store':5}: p50 {lat['p50_ms']:.2f} ms, "
                          f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")
                finally:
                    r.stop()
finally:
    shutil.rmtree(work, ignore_errors=True)
