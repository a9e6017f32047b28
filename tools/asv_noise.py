"""How much one commit's figures move between asv runs, per benchmark family: the basis of the thresholds.

Usage (from the repository root)::

    for m in NAME-noise1 NAME-noise2 NAME-noise3; do
        asv machine --machine $m --yes && asv run --machine $m COMMIT^!
    done
    python tools/asv_noise.py COMMIT NAME-noise1 NAME-noise2 NAME-noise3
    rm -r .asv/results/NAME-noise*        # keep them out of the report

For every series it prints the runs' values and their spread (largest / smallest - 1);
per family (file and benchmark name, all parameters together) the median and largest
spread and a suggested ``regressions_thresholds`` entry: the median spread rounded up
to 0.05, at least 0.02 (a figure that never moves still gets a little room).
"""

import itertools
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / ".asv" / "results"


def spreads(commit, machines):
    """{family: [spread of each series]} and the rows (family, params, values, spread)."""
    from asv.results import Results

    runs = [Results.load(str(next((RESULTS / m).glob(f"{commit[:8]}*.json")))) for m in machines]
    families, rows = defaultdict(list), []
    for name in sorted(runs[0].get_all_result_keys()):
        params = runs[0].get_result_params(name)
        values = [r.get_result_value(name, params) for r in runs if name in r.get_all_result_keys()]
        for i, combo in enumerate(itertools.product(*params) if params else [()]):
            xs = [v[i] for v in values if v and v[i] is not None and not math.isnan(v[i])]
            if len(xs) < 2 or min(xs) <= 0:
                continue
            family = f"{name.split('.')[0]}.{name.split('.')[-1]}"
            spread = max(xs) / min(xs) - 1
            families[family].append(spread)
            rows.append((family, combo, xs, spread))
    return families, rows


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: python tools/asv_noise.py COMMIT MACHINE MACHINE [MACHINE...]")
    families, rows = spreads(argv[0], argv[1:])
    for family, combo, xs, spread in rows:
        print(f"{family:52s} {', '.join(combo):28s} {' '.join(f'{x:.4g}' for x in xs):34s} {spread:7.1%}")
    print()
    for family, values in sorted(families.items()):
        median = statistics.median(values)
        threshold = max(0.02, math.ceil(median / 0.05) * 0.05)
        print(f"{family:52s} median {median:7.1%}  max {max(values):7.1%}  "
              f'-> "{family.split(".")[0]}\\\\..*{family.split(".")[1]}": {threshold:.2f}')


if __name__ == "__main__":
    main(sys.argv[1:])
