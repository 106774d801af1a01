#!/usr/bin/python3
"""bench/diag/store-only.py [MAILREDIR] - mailredir with and without a route, one run:
what the acceptance path costs alone (no route: mail is only stored, no workers)
against the same with delivery workers forwarding to an smtp-sink.  Reuses the
pieces of bench/run.  Run as root; best inside `unshare --net` (ip link set lo up)."""
import os
import shutil
import sys
import tempfile
import time

from benchrun import B, start_mailredir

HERE = os.path.dirname(os.path.abspath(__file__))

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "mailredir")
N = 1000
work = tempfile.mkdtemp(prefix="mailredir-store-only.")
try:
    shutil.copy2(binary, os.path.join(work, "mailredir.bin"))
    binary = os.path.join(work, "mailredir.bin")
    print(f"mailredir: {B.binary_note(sys.argv[1] if len(sys.argv) > 1 else binary)}")
    for variant in ("store only (no route)", "with route"):
        store = variant.startswith("store")
        r = start_mailredir(os.path.join(work, "store" if store else "route"), binary,
                            route=not store, settle=0.5)
        try:
            B.smtp_source(r.port, 100, 8)       # warm-up
            r.accepted = 100
            print(f"{variant}:")
            for c in (1, 8, 32):
                if not store:
                    r.sink.reached(r.accepted, 120)
                cpu0 = r.cpu_ticks()[0]
                t0 = time.monotonic()
                rc, err = B.smtp_source(r.port, N, c)
                t1 = time.monotonic()
                r.accepted += N
                e2e = "" if store else \
                    f", end to end {N / ((r.sink.reached(r.accepted, 120) or time.monotonic()) - t0):4.0f} msgs/s"
                time.sleep(0.3)
                cpu = (r.cpu_ticks()[0] - cpu0) / B.HZ
                print(f"  C={c:2}: accepted {N / (t1 - t0):4.0f} msgs/s{e2e}, CPU {1000 * cpu / N:5.2f} s / 1000 msgs"
                      f"{'' if rc == 0 else ' (smtp-source: ' + err[-100:] + ')'}")
            if not store:
                r.sink.reached(r.accepted, 120)
            lat = B.latency(r, 300)
            print(f"  end of DATA -> 250, C=1, 300 msgs: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms")
        finally:
            r.stop()
    fs = B.fsync_probe(os.path.join(work, "probe"), 3)
    print(f"fsync probe: one fsync p50 {fs['fsync_p50_ms']:.2f} ms; cycle p50 {fs['cycle_p50_ms']:.2f} ms, "
          f"p99 {fs['cycle_p99_ms']:.2f} ms")
finally:
    shutil.rmtree(work, ignore_errors=True)
