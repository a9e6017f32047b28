"""``digitbench gradcheck``: every backend's gradients against central finite differences."""

import argparse
import sys

import numpy as np

from ..backends import BACKENDS
from ..gradcheck import TOLERANCE, format_table, gradcheck
from .options import (add_json_option, add_network_option, at_most, backend_name, positive_float, print_json,
                      seed_value)

#: Bounds of the check's size: a few samples and entries already test every path, and the
#: naive backend takes about a second for each entry of a batch this large.
MAX_BATCH, MAX_ENTRIES, MAX_EPS = 64, 1000, 0.1
#: Backends left out of a network's check unless named: the naive CNN's convolutions, one
#: multiply-add at a time in Python, make each of the check's many forward passes long.
SLOW = {"cnn": ("naive",)}
from .runtime import add_threads_option, load_backend, threaded


def add_parser(sub):
    p = sub.add_parser("gradcheck", help="check every backend's gradients against finite differences")
    p.add_argument("--backend", action="append", type=backend_name, metavar="{" + ",".join(BACKENDS) + "}",
                   help="backend to check; repeat for several (default: all; for the cnn, numpy and numba: the "
                        "naive cnn is slow, name it to check it)")
    p.add_argument("--batch-size", type=at_most(MAX_BATCH, "a gradient check's batch (a few samples test every "
                                                           "path; each entry costs two passes over the batch)"),
                   default=4, help=f"samples in the random batch, at most {MAX_BATCH} (default: 4)")
    p.add_argument("--entries", type=at_most(MAX_ENTRIES, "a gradient check's entries per tensor (each costs two "
                                                          "passes over the batch)"), default=10,
                   help=f"entries checked per tensor, sampled at random, at most {MAX_ENTRIES} (default: 10)")
    p.add_argument("--eps", type=step, default=1e-5,
                   help=f"finite-difference step, at most {MAX_EPS:g} (default: 1e-5)")
    p.add_argument("--tolerance", type=positive_float, default=TOLERANCE,
                   help=f"largest relative error that passes (default: {TOLERANCE:g})")
    p.add_argument("--seed", type=seed_value, default=0, help="seeds parameters, batch and entries (default: 0)")
    add_network_option(p, help="the network whose gradients to check: mlp or cnn, every parameter array of it "
                               "(default: mlp)")
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(func=threaded(run))


def step(text):
    """argparse type for ``--eps``: a positive number at most :data:`MAX_EPS`."""
    value = positive_float(text)
    if value > MAX_EPS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_EPS:g}: a step that large measures no "
                                         "derivative (weights are about 0.05)")
    return value


def run(args):
    names = args.backend or [name for name in BACKENDS if name not in SLOW.get(args.network, ())]
    results, failed = {}, []
    for name in dict.fromkeys(names):
        backend = load_backend(name, args.network)
        if hasattr(backend, "warmup"):
            backend.warmup((np.float64,))  # compile now, announced (gradcheck runs in float64)
        records = gradcheck(backend, args.batch_size, args.entries, args.eps, args.seed, args.tolerance)
        results[name] = records
        label = name if args.network == "mlp" else f"{name}, {args.network}"
        print(format_table(label, records, args.tolerance), flush=True)
        failed += [f"{name}.{r['tensor']}" for r in records if not r["ok"]]
    if args.json:
        print_json({"backends": list(results), "network": args.network, "tolerance": args.tolerance, "ok": not failed, "results": results})
    if failed:
        print(f"digitbench gradcheck: error: relative error above {args.tolerance:g} in {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
