"""``digitbench evaluate``: test accuracy, per-class accuracy and the confusion matrix."""

import sys

from ..data import DATASETS, TITLES
from ..evaluate import evaluate, format_confusion
from .options import (add_backend_option, add_data_dir_option, add_json_option, add_model_option, load_model_data,
                      open_model, print_json)
from .runtime import add_threads_option, load_backend, threaded


def add_parser(sub):
    p = sub.add_parser("evaluate", help="test accuracy, per-class accuracy and confusion matrix of a saved model")
    add_model_option(p)
    add_backend_option(p)
    add_data_dir_option(p)
    p.add_argument("--dataset", choices=DATASETS, help="data set (default: the one the model was trained on)")
    add_threads_option(p)
    add_json_option(p)
    p.set_defaults(func=threaded(run))


def epochs_run(meta):
    """The epochs a model was trained for: its history's length (a run stopped at its
    target ran fewer than planned), else the recipe's epochs, else None."""
    if "history" in meta:
        return len(meta["history"])
    return meta.get("config", {}).get("epochs")


def run(args):
    model = open_model(args.model)
    params, meta = model
    dataset, data = load_model_data(args, meta)
    trained_on = meta.get("dataset") or "mnist"
    if dataset != trained_on:
        print(f"warning: {args.model} was trained on {TITLES[trained_on]}; evaluated here on "
              f"{TITLES[dataset]}, whose classes are other things, so its accuracy means nothing",
              file=sys.stderr)
    backend = load_backend(args.backend, model.network)
    result = evaluate(backend, params, data.test_images, data.test_labels, source=args.model)
    print(f"{args.model}: test accuracy {100 * result['test_accuracy']:.2f}% on {len(data.test_labels)} "
          f"{dataset} test images ({model.network}, {args.backend} backend)")
    print(format_confusion(result["confusion_matrix"], result["per_class_accuracy"]))
    if args.json:
        record = {k: v for k, v in result.items() if k != "predictions"}
        record.update(backend=args.backend, network=model.network, dataset=dataset, model=str(args.model),
                      epochs_run=epochs_run(meta), train_seconds=None, seconds_to_target=None)
        print_json(record)
    return 0
