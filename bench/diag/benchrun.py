"""bench/diag/benchrun.py - what the diagnostic scripts share: bench/run's pieces
(loaded as module B) and a mailredir started with or without its route."""
import importlib.machinery
import importlib.util
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(HERE, "..", "run"))
_spec = importlib.util.spec_from_loader("bench_run", _loader)
B = importlib.util.module_from_spec(_spec)
_loader.exec_module(B)


def start_mailredir(directory, binary, route=True, settle=0.3):
    """A started bench/run Mailredir in directory; without route it only
    stores (the [route] section is cut from its configuration)."""
    os.makedirs(directory)
    r = B.Mailredir(directory, binary)
    if not route:
        with open(r.conf) as f:
            text = f.read().split("[route")[0]
        with open(r.conf, "w") as f:
            f.write(text)
    r.start()
    time.sleep(settle)
    return r
