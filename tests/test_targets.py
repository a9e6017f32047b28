"""The speed targets (src/digitbench/targets.py) and the work-done arithmetic."""

import pytest

from digitbench import bench
from digitbench.targets import TARGETS, Target, check_sweep, check_targets, format_targets

RUN = {"batch_size": 64, "threads": 2, "quick": False}
RATIO = Target("numba", "train_samples_per_s", ">=", 5.5, of="pytorch", when=dict(batch_size=64, threads=2),
               why="test")
SECONDS = Target("numba", "epoch_seconds", "<=", 0.10, when=dict(batch_size=64), why="test")


def verdicts(records, run=RUN, targets=(RATIO, SECONDS)):
    return {(v["metric"], v["of"]): v for v in check_targets(records, run, targets)}


def test_targets_are_judged_in_their_direction_on_ratios_of_one_run():
    records = [{"name": "numba", "train_samples_per_s": 600.0, "epoch_seconds": 0.12},
               {"name": "pytorch", "train_samples_per_s": 100.0}]
    v = verdicts(records)
    assert v["train_samples_per_s", "pytorch"]["value"] == 6.0 and v["train_samples_per_s", "pytorch"]["met"]
    assert v["epoch_seconds", None]["value"] == 0.12 and v["epoch_seconds", None]["met"] is False
    records[0]["train_samples_per_s"] = 500.0
    assert verdicts(records)["train_samples_per_s", "pytorch"]["status"] == "not met (one value, no interval)"


def reps(name, rates, epochs=None):
    """A record with repetitions, as bench keeps them (medians beside)."""
    record = {"name": name, "train_samples_per_s": sorted(rates)[len(rates) // 2], "train_samples_per_s_reps": rates}
    if epochs:
        record |= {"epoch_seconds": sorted(epochs)[len(epochs) // 2], "epoch_seconds_reps": epochs}
    return record


@pytest.mark.parametrize("numba_rates, status, met", [
    ([600, 610, 620, 605, 615], "met", True),  # every pair about 6x: the interval clears 5.5
    ([500, 510, 505, 495, 515], "not met", False),  # about 5x: the interval misses 5.5
    ([500, 620, 560, 610, 520], "inconclusive", None),  # 5.0-6.2x: the interval straddles 5.5
])
def test_a_ratio_is_met_only_when_its_interval_clears_the_target(numba_rates, status, met):
    torch = reps("pytorch", [100.0] * 5)
    v = verdicts([reps("numba", [float(r) for r in numba_rates]), torch], targets=(RATIO,))
    (verdict,) = v.values()
    assert verdict["status"] == status and verdict["met"] is met
    low, high = verdict["interval"]
    assert low <= verdict["value"] <= high
    assert "95% CI" in format_targets([verdict])


def test_no_internal_words_in_what_bench_prints_or_writes():
    for t in TARGETS:
        text = t.describe() + " " + t.why
        assert "issue" not in text and "the lead" not in text and "reference machine" not in text, text
    record = check_targets([{"name": "numba", "epoch_seconds": 0.05}], RUN, TARGETS)
    assert all("issue" not in v for v in record)


def test_quick_runs_other_settings_and_missing_contenders_get_no_verdict():
    records = [{"name": "numba", "train_samples_per_s": 600.0, "epoch_seconds": 0.05}]
    quick = verdicts(records, {**RUN, "quick": True})
    assert all(v["met"] is None and v["status"].startswith("not judged") for v in quick.values())
    assert format_targets(list(quick.values())).endswith("not judged: --quick figures are extrapolated")
    one_thread = verdicts(records, {**RUN, "threads": 1})
    assert one_thread["train_samples_per_s", "pytorch"]["status"] == \
        "not applicable to this run (stated for --threads 2)"
    assert one_thread["epoch_seconds", None]["met"] is True  # stated for batch 64 only
    assert verdicts(records)["train_samples_per_s", "pytorch"]["status"] == "not measured: pytorch (add --peers)"


def test_every_target_has_its_reason_and_a_metric_bench_records():
    recorded = {"train_samples_per_s", "infer_samples_per_s", "epoch_seconds", "seconds_to_target"}
    for t in TARGETS:
        assert t.op in (">=", "<=") and t.metric in recorded and len(t.why) > 40, t
        assert t.describe().startswith(t.contender)


def test_work_done_is_counted_from_the_pixels():
    # every pixel non-zero: the sparse count is the dense one
    assert bench.executed_train_flops(784 * 10, 10) == 10 * bench.train_flops_per_sample()
    # no pixel: only the dense layers, 3 * (128*64 + 64*10) multiply-adds = 26,496, 2 FLOP each
    assert bench.executed_train_flops(0, 1) == 2 * 3 * 8832 == 52_992
    # 150 non-zero pixels: layer 1 forward and weight gradient 150 * 128 each
    assert bench.executed_train_flops(150, 1) == 2 * (2 * 150 * 128 + 26_496)


def test_a_sparse_backend_share_counts_the_work_done():
    record = {"name": "numba", "sparse_input": True, "train_samples_per_s": 400_000.0,
              "train_samples_timed": 1000, "train_seconds": [1.0, 1.0], "train_nonzero_pixels": 150 * 2000}
    bench.add_derived(record, peak_gflops=100.0)
    dense = 454_400 * 400_000 / 1e11  # 1.82: "182% of peak" counts work not done
    assert record["share_of_peak"] == pytest.approx(dense)
    executed = 2 * (2 * 150 * 128 + 26_496) * 400_000 / 1e11
    assert record["share_of_peak_done"] == pytest.approx(executed) and record["share_of_peak_done"] < 1


def test_inference_targets_are_judged_at_every_batch_size_of_a_sweep():
    points = [dict(name=n, batch_size=b, threads=2, infer_samples_per_s=r)
              for b, rates in ((1, dict(numba=130, pytorch=100, numpy=120)), (64, dict(numba=110, pytorch=100, numpy=90)))
              for n, r in rates.items()]
    verdicts = {(v["batch_size"], v["of"]): v for v in check_sweep(points, quick=False)}
    assert verdicts[1, "pytorch"]["met"] and verdicts[1, "numpy"]["met"]
    assert verdicts[64, "pytorch"]["met"] is False and verdicts[64, "numpy"]["met"]  # 1.1x < 1.2x
    assert verdicts[64, "pytorch"]["target"].endswith("at batch 64")
    assert all(v["met"] is None for v in check_sweep(points, quick=True))


@pytest.mark.parametrize("samples, judged", [(1_000, False), (12_799, False), (12_800, True), (None, True)])
def test_a_samples_run_is_judged_from_200_steps_a_repetition(samples, judged):
    records = [reps("numba", [600.0, 610.0, 620.0]), reps("pytorch", [100.0] * 3)]
    (verdict,) = verdicts(records, {**RUN, "samples": samples}, targets=(RATIO,)).values()
    assert (verdict["status"] == "met") is judged
    if not judged:
        assert verdict["status"] == "not judged: --samples under 12,800 a repetition"
