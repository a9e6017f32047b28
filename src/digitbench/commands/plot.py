"""``digitbench plot``: pictures of a trained model (see :mod:`digitbench.plots`)."""

from pathlib import Path

from ..backends import get_backend
from ..data import DATASETS
from ..plots import FILES, write_model_plots
from .options import (add_backend_option, add_data_dir_option, add_json_option, add_model_option, load_model_data,
                      check_out_dir, make_out_dir, open_model, print_json)


def add_parser(sub):
    p = sub.add_parser("plot", help="pictures of a trained model: curves, confusion matrix, mistakes, weights")
    add_model_option(p)
    p.add_argument("--out-dir", type=Path, default=".",
                   help="where to write the PNG files, created if missing (default: .)")
    add_backend_option(p)
    add_data_dir_option(p)
    p.add_argument("--dataset", choices=DATASETS, help="data set (default: the one the model was trained on)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args):
    check_out_dir(args.out_dir, FILES.values())
    model = open_model(args.model)
    params, meta = model
    _, data = load_model_data(args, meta)  # an explicit --dataset wins over the model's
    make_out_dir(args.out_dir)
    written = write_model_plots(params, meta, data, get_backend(args.backend, model.network), args.out_dir, source=args.model)
    if "curves" not in written:
        print(f"{args.model}: no training history in the model file; skipped {FILES['curves']}")
    for path in written.values():
        print(f"wrote {path}")
    if args.json:
        print_json({"backend": args.backend, "model": str(args.model), "figures": {k: str(v) for k, v in written.items()}})
    return 0
