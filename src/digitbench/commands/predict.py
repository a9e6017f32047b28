"""``digitbench predict``: classify image files of single digits (or Fashion-MNIST items).

One line per image on standard output: the answer, its probability, and the top
classes, e.g. ``seven.png: 7 (99.1%)   7: 99.1%  2: 0.5%  1: 0.2%``. An answer whose
probability is below :data:`UNSURE_BELOW` is marked ``unsure``. An image that cannot
be read gets one line on standard error and the others are still answered; the exit
status is 1 if any image failed.
"""

import sys

import numpy as np

from ..errors import ImageError, ModelFileError
from ..evaluate import predicted_labels
from ..predict import predict_pixels, preprocess_image
from .options import add_backend_option, add_json_option, add_model_option, open_model, positive_int, print_json
from .runtime import add_threads_option, load_backend, threaded

#: A top probability below this is reported as unsure (pure noise scores about 0.3).
UNSURE_BELOW = 0.5


def add_parser(sub):
    p = sub.add_parser("predict", help="classify image files (PNG, JPEG, ...) of single digits")
    add_model_option(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_backend_option(p)
    p.add_argument("--top", type=positive_int, default=3, help="how many probabilities to show (default: 3)")
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(func=threaded(run))


def run(args):
    model = open_model(args.model)
    backend = load_backend(args.backend, model.network)
    good, pixels, errors = [], [], []
    for path in args.images:
        try:
            pixels.append(preprocess_image(path))
            good.append(path)
        except ImageError as e:
            errors.append({"image": path, "error": str(e)})
            print(f"digitbench predict: error: {e}", file=sys.stderr, flush=True)
    records = []
    if good:
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below, in one line
            probabilities = predict_pixels(backend, model.params, np.stack(pixels))
        if not np.isfinite(probabilities).all():
            raise ModelFileError(f"{args.model}: the model's outputs are not finite numbers (NaN or infinite); "
                                 "its weights are broken, train it again")
        labels = predicted_labels(backend, model.params, np.stack(pixels), probabilities)
        for path, p, best in zip(good, probabilities, labels):
            records.append(report(path, p, int(best), model, args.top))
    if args.json:
        print_json({"backend": args.backend, "network": model.network, "model": str(args.model), "dataset": model.dataset,
                    "predictions": records, "errors": errors})
    return 1 if errors else 0


def report(path, p, best, model, top):
    """Print one image's line (``best``: its class, the arg-max of its logits); return its JSON record."""
    order = [best, *(int(d) for d in np.argsort(p, kind="stable")[::-1] if d != best)][:min(top, 10)]
    names = model.class_names(range(10))
    answer = best if model.dataset == "mnist" else f"{best} {names[best]}"
    unsure = bool(p[best] < UNSURE_BELOW)
    print(f"{path}: {answer} ({100 * p[best]:.1f}%{', unsure' if unsure else ''})   "
          + "  ".join(f"{d}: {100 * p[d]:.1f}%" for d in order), flush=True)
    return {"image": str(path), "digit": best, "label": best, "class": names[best], "unsure": unsure,
            "probabilities": [float(x) for x in p]}
