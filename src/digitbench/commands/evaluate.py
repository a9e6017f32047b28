"""``digitbench evaluate``: test accuracy, per-class accuracy and the confusion matrix."""

from ..backends import get_backend
from ..data import DATASETS
from ..evaluate import evaluate, format_confusion
from ..model_io import load_model
from .options import add_backend_option, add_data_dir_option, add_json_option, load_model_data, print_json


def add_parser(sub):
    p = sub.add_parser("evaluate", help="test accuracy, per-class accuracy and confusion matrix of a saved model")
    p.add_argument("--model", required=True, help="a .npz file written by `digitbench train`")
    add_backend_option(p)
    add_data_dir_option(p)
    p.add_argument("--dataset", choices=DATASETS, help="data set (default: the one the model was trained on)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args):
    params, meta = load_model(args.model)
    dataset, data = load_model_data(args, meta)
    backend = get_backend(args.backend)
    result = evaluate(backend, params, data.test_images, data.test_labels, source=args.model)
    print(f"{args.model}: test accuracy {100 * result['test_accuracy']:.2f}% on {len(data.test_labels)} "
          f"{dataset} test images ({args.backend} backend)")
    print(format_confusion(result["confusion_matrix"], result["per_class_accuracy"]))
    if args.json:
        record = {k: v for k, v in result.items() if k != "predictions"}
        record.update(backend=args.backend, dataset=dataset, model=str(args.model),
                      epochs_run=meta.get("config", {}).get("epochs"), train_seconds=None, seconds_to_target=None)
        print_json(record)
    return 0
