"""``digitbench predict``: classify image files of single digits."""

import numpy as np

from ..backends import get_backend
from ..model_io import load_model
from ..predict import predict_images
from .options import add_backend_option, add_json_option, positive_int, print_json


def add_parser(sub):
    p = sub.add_parser("predict", help="classify image files (PNG, JPEG, ...) of single digits")
    p.add_argument("--model", required=True, help="a .npz file written by `digitbench train`")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_backend_option(p)
    p.add_argument("--top", type=positive_int, default=3, help="how many probabilities to show (default: 3)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args):
    params, _ = load_model(args.model)
    probabilities = predict_images(get_backend(args.backend), params, args.images)
    records = []
    for path, p in zip(args.images, probabilities):
        top = np.argsort(p)[::-1][:min(args.top, 10)]
        print(f"{path}: {top[0]}   " + "  ".join(f"{d}: {100 * p[d]:.1f}%" for d in top))
        records.append({"image": path, "digit": int(top[0]), "probabilities": [float(x) for x in p]})
    if args.json:
        print_json({"backend": args.backend, "predictions": records})
    return 0
