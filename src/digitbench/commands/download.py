"""``digitbench download``: fetch a data set from the public mirrors, checksums verified."""

from ..datasets import is_default_cache, resolve_data_dir
from ..download import download_dataset
from .options import add_data_options, show_progress


def add_parser(sub):
    p = sub.add_parser("download", help="fetch the data set from the public mirrors (checksums verified)")
    add_data_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    folder = download_dataset(resolve_data_dir(args.data_dir, args.dataset), args.dataset,
                              progress=show_progress(args), replace_bad=is_default_cache(args.data_dir))
    print(f"{args.dataset}: all four files present and verified in {folder}")
    return 0
