"""``bench --sweep batch|threads``: short points, whole batches, a JSON record and a plot.

On tiny data with tiny timing (``--quick``: 512 samples a point, one repeat): these check
what is measured and written, not speed.
"""

import json

import numpy as np

from digitbench import bench, cli, get_backend, sweeps
from digitbench.commands import bench as bench_command
from digitbench.datasets import synthetic_data
from digitbench.plots import plot_sweep

TINY = dict(samples=96, min_seconds=0.0, min_repeats=1)


def tiny_data(seed=0):
    """256 training and 64 test images of random pixels."""
    return synthetic_data(seed, 256, 64)


def test_a_point_times_whole_batches_of_a_fixed_number_of_samples():
    c = bench.BackendContender(get_backend("numpy"))
    p = sweeps.measure_point(c, tiny_data(), 32, threads=1, **TINY)
    assert p["train_samples"] == 96 and p["infer_samples"] == 64  # the tiny test set has 64 images
    assert p["train_samples_per_s"] == 96 / p["train_seconds"] > 0 and p["infer_samples_per_s"] > 0
    # a batch larger than the samples asked for: one whole batch, the permutation repeated
    big = sweeps.measure_point(c, tiny_data(), 1024, threads=1, **TINY)
    assert big["train_samples"] == 1024 and big["batch_size"] == 1024


def test_best_time_repeats_until_enough_seconds_and_calls():
    calls = []
    best, repeats = sweeps.best_time(lambda: calls.append(1), min_seconds=0.0, min_repeats=3)
    assert repeats == 3 and len(calls) == 4 and best >= 0  # one untimed call first


def test_batch_sweep_leaves_out_the_naive_backend_and_reports_a_peer_failure():
    class Broken:
        kind, name, slow = "peer", "broken", False

        def prepare(self, *a, **k):
            raise RuntimeError("no compiler\nmore")

    contenders = [bench.BackendContender(get_backend(n)) for n in ("naive", "numpy")] + [Broken()]
    points = sweeps.sweep_batch(contenders, tiny_data(), 1, batch_sizes=(1, 8), **TINY)
    assert [(p["name"], p["batch_size"]) for p in points] == \
        [("numpy", 1), ("numpy", 8), ("broken", 1), ("broken", 8)]
    assert points[-1]["error"] == "RuntimeError: no compiler"


def test_thread_counts_go_from_one_to_the_cores():
    assert sweeps.thread_counts(4) == (1, 2, 3, 4) and sweeps.thread_counts(1) == (1,)


def test_plot_sweep_draws_every_contender(tmp_path):
    points = [dict(name=n, kind=k, batch_size=b, train_samples_per_s=r * b, infer_samples_per_s=2 * r * b)
              for n, k, r in (("numba", "digitbench", 3.0), ("pytorch", "peer", 1.0)) for b in sweeps.BATCH_SIZES]
    points.append(dict(name="torch.compile", kind="peer", batch_size=64, error="RuntimeError: no compiler"))
    path = plot_sweep(points, tmp_path / "sweep.png", "batch_size", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_batch_sweep_writes_json_and_a_log_log_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweeps, "BATCH_SIZES", (1, 64, 4096))
    monkeypatch.setattr(bench_command, "synthetic_data", tiny_data)
    png, out_json = tmp_path / "sweep.png", tmp_path / "sweep.json"
    code, out, err = run(["bench", "--sweep", "batch", "--quick", "--synthetic", "--backends", "naive,numpy",
                          "--threads", "1", "--plot", str(png), "--out-json", str(out_json), "--json"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert record == json.loads(out_json.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["sweep"] == "batch" and record["axis"] == "batch_size" and record["machine"]["cores"] >= 1
    # the naive backend is left out of sweeps
    assert [(p["name"], p["batch_size"]) for p in record["points"]] == [("numpy", 1), ("numpy", 64), ("numpy", 4096)]
    assert all(p["threads"] == 1 and p["train_samples_per_s"] > 0 for p in record["points"])
    assert "by batch size" in out and out.startswith("machine: ")
    # inference targets are judged per batch size, but never on --quick points
    assert {v["batch_size"] for v in record["targets"]} == {1, 64, 4096}
    assert all(v["met"] is None for v in record["targets"]) and "not judged" in out


def test_cli_threads_sweep_runs_each_count_in_a_fresh_process(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweeps, "thread_counts", lambda cores=None: (1, 2))
    monkeypatch.setattr(bench_command, "synthetic_data", tiny_data)
    code, out, err = run(["bench", "--sweep", "threads", "--quick", "--synthetic", "--backends", "numpy",
                          "--no-plot", "--json"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert [(p["name"], p["threads"], p["batch_size"]) for p in record["points"]] == \
        [("numpy", 1, 64), ("numpy", 2, 64)]
    assert np.all([p["infer_samples_per_s"] > 0 for p in record["points"]])


def test_sweeps_hold_numba_at_the_stated_threads():
    class Parallel:  # stands for the numba backend, whose runs choose their thread count by default
        name, parallel, single_thread_blas_batch = "parallel", True, 0

    backend = Parallel()
    table = bench.BackendContender(backend, 2)
    assert table.run.chooser is not None  # bench's table: what train does
    swept = bench.BackendContender(backend, 2, adaptive=False)
    assert swept.run.chooser is None and swept.thread_choice["reason"].startswith("fixed")
    assert "adaptive thread choice off" in swept.threads_note
    assert vars(backend) == {}, "a contender changed the shared backend"
