"""``digitbench gradcheck``: every backend's gradients against central finite differences."""

import sys

import numpy as np

from ..backends import BACKENDS
from ..gradcheck import TOLERANCE, format_table, gradcheck
from .options import (add_json_option, backend_name, bytes_per_sample, check_memory, positive_float, positive_int,
                      print_json, seed_value)
from .runtime import add_threads_option, load_backend, threaded


def add_parser(sub):
    p = sub.add_parser("gradcheck", help="check every backend's gradients against finite differences")
    p.add_argument("--backend", action="append", type=backend_name, metavar="{" + ",".join(BACKENDS) + "}",
                   help="backend to check; repeat for several (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="samples in the random batch (default: 4)")
    p.add_argument("--entries", type=positive_int, default=10,
                   help="entries checked per tensor, sampled at random (default: 10)")
    p.add_argument("--eps", type=positive_float, default=1e-5, help="finite-difference step (default: 1e-5)")
    p.add_argument("--tolerance", type=positive_float, default=TOLERANCE,
                   help=f"largest relative error that passes (default: {TOLERANCE:g})")
    p.add_argument("--seed", type=seed_value, default=0, help="seeds parameters, batch and entries (default: 0)")
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(func=threaded(run))


def run(args):
    names = args.backend or list(BACKENDS)
    # float64 batch; a few copies live at once while the differences are taken
    check_memory(args.batch_size, 2 * bytes_per_sample(8), f"--batch-size {args.batch_size}")
    results, failed = {}, []
    for name in dict.fromkeys(names):
        backend = load_backend(name)
        if hasattr(backend, "warmup"):
            backend.warmup((np.float64,))  # compile now, announced (gradcheck runs in float64)
        records = gradcheck(backend, args.batch_size, args.entries, args.eps, args.seed, args.tolerance)
        results[name] = records
        print(format_table(name, records, args.tolerance), flush=True)
        failed += [f"{name}.{r['tensor']}" for r in records if not r["ok"]]
    if args.json:
        print_json({"backends": list(results), "tolerance": args.tolerance, "ok": not failed, "results": results})
    if failed:
        print(f"digitbench gradcheck: error: relative error above {args.tolerance:g} in {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
