#!/usr/bin/python3
"""bench/diag/sync-batch.py [DIR] - what committing a batch of k 4 KiB messages costs on
the file system of DIR (default: a temp directory), three ways:
  current   what spool_commit_batch does: fdatasync the content and the envelope of
            every message, fsync data/, rename each envelope into queue/, fsync queue/
  one-file  content and envelope in one file: one fdatasync per message, one fsync
            of the directory per batch
  syncfs    everything written and renamed, then one syncfs(2) for the batch
(median of 40 batches each)."""
import ctypes
import os
import shutil
import statistics
import sys
import tempfile
import time

base = tempfile.mkdtemp(prefix="sync-batch.", dir=sys.argv[1] if len(sys.argv) > 1 else None)
libc = ctypes.CDLL(None, use_errno=True)
payload, envelope = os.urandom(4096), b"sender a@example.org\nrcpt b@example.net\n" * 4
for sub in ("data", "incoming", "queue"):
    os.makedirs(os.path.join(base, sub))


def dir_fsync(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)


def batch(k, mode, tag):
    files = []
    for j in range(k):
        name = f"{tag}.{j}"
        content = os.open(f"{base}/data/{name}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(content, payload)
        env = None
        if mode == "one-file":
            os.write(content, envelope)
        else:
            env = os.open(f"{base}/incoming/{name}", os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(env, envelope)
        files.append((name, content, env))
    t0 = time.perf_counter()
    if mode == "current":
        for _, content, env in files:
            os.fdatasync(content)
            os.fdatasync(env)
        dir_fsync(f"{base}/data")
        for name, _, _ in files:
            os.rename(f"{base}/incoming/{name}", f"{base}/queue/{name}")
        dir_fsync(f"{base}/queue")
    elif mode == "one-file":
        for _, content, _ in files:
            os.fdatasync(content)
        dir_fsync(f"{base}/data")
    else:
        for name, _, _ in files:
            os.rename(f"{base}/incoming/{name}", f"{base}/queue/{name}")
        if libc.syncfs(files[0][1]) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    elapsed = time.perf_counter() - t0
    for _, content, env in files:
        os.close(content)
        if env is not None:
            os.close(env)
    return elapsed


try:
    print(f"{base}: batch commit, median of 40 batches")
    for k in (1, 8, 32):
        for mode in ("current", "one-file", "syncfs"):
            t = statistics.median(batch(k, mode, f"{mode}{k}.{i}") for i in range(40))
            print(f"  k={k:2}  {mode:8}  batch {t * 1e3:6.2f} ms   per message {t * 1e3 / k:5.2f} ms")
finally:
    shutil.rmtree(base, ignore_errors=True)
