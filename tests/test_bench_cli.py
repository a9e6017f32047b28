"""`digitbench bench`: the FLOP arithmetic, the targets, and quick end-to-end runs.

The end-to-end runs use --quick (4,096 training samples, one repeat, a 1024x1024 GEMM)
and one thread, so each takes a second or two; they check what is written, not speed.
"""

import json

import pytest

from digitbench import bench, cli


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_flop_count_matches_the_layer_sizes():
    # m = 784*128 + 128*64 + 64*10 = 100352 + 8192 + 640 = 109184 multiply-adds per sample.
    assert bench.multiply_adds() == 109_184
    # forward 2m + weight grads 2m + input grads of layers 2 and 3: 2(m - 100352) = 17664
    assert bench.train_flops_per_sample() == 2 * 109_184 + 2 * 109_184 + 2 * (8192 + 640) == 454_400
    assert bench.train_flops_per_sample() * 60_000 == 27_264_000_000  # 27.26 GFLOP an epoch
    assert bench.inference_flops_per_sample() == 218_368


def test_quick_bench_writes_json_and_png(tmp_path, data_dir, capsys):
    png, out_json = tmp_path / "bench.png", tmp_path / "bench.json"
    code, out, err = run(["bench", "--quick", "--backends", "numpy", "--threads", "1", "--data-dir", str(data_dir),
                          "--plot", str(png), "--out-json", str(out_json), "--json"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert record == json.loads(out_json.read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["threads"] == 1 and record["batch_size"] == 64 and record["quick"]
    # threadpoolctl held every BLAS pool at the stated count
    assert all(p["threads"] == 1 for p in record["thread_pools"] if p["api"] == "blas")
    (numpy_record,) = record["contenders"]
    assert numpy_record["name"] == "numpy" and numpy_record["epoch_extrapolated"]
    assert numpy_record["train_samples_timed"] == 4096 and numpy_record["infer_samples_timed"] == 10_000
    assert numpy_record["train_samples_per_s"] > 0 and 0 < numpy_record["share_of_peak"] < 1.5
    assert numpy_record["first_call_seconds"] > 0 and numpy_record["prepare_seconds"] > 0
    # a dense backend executes the dense count: both shares are the same figure
    assert numpy_record["share_of_peak_done"] == numpy_record["share_of_peak"]
    assert "numpy" in out and "GFLOP" in out and "speed targets" in out
    # every table states its machine, versions and threads; --quick judges no target
    assert record["machine"]["cores"] >= 1 and record["machine"]["versions"]["numpy"]
    assert out.startswith("machine: ") and "versions: python" in out and "threads: at most 1 per contender" in out
    # ... and the kernels its BLAS runs (OpenBLAS picks them from the CPU unless told)
    assert any(b.startswith("openblas ") for b in record["machine"]["blas"]) and "\nBLAS: openblas " in out
    assert all(p["kernels"] for p in record["thread_pools"] if p["library"] == "openblas")
    assert all(t["met"] is None and t["status"].startswith("not judged") for t in record["targets"])
    (target_line,) = [line for line in out.splitlines() if line.startswith("speed targets")]
    assert target_line.endswith("not judged: --quick figures are extrapolated")
    assert record["time_to_target"] == {}  # not with --quick
    # the threads used, per contender; no share above 100%; the empty ratio column explained
    header, _, row = out.split("\n\ncontender")[1].splitlines()[:3]
    assert "threads" in header and row.split()[:2] == ["numpy", "1"] and numpy_record["threads_used"] == 1
    assert "'x PyTorch': filled when PyTorch is timed too (--peers)" in out


def test_synthetic_data_needs_no_files(tmp_path, capsys):
    code, out, err = run(["bench", "--quick", "--backends", "numpy", "--threads", "1", "--synthetic", "--no-plot",
                          "--repeats", "2", "--json"], capsys)
    assert code == 0, err
    record = json.loads(out.strip().splitlines()[-1])
    assert record["data"] == "synthetic" and len(record["contenders"][0]["train_seconds"]) == 2
    assert not (tmp_path / "bench.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--backends", "fortran"], "unknown backend 'fortran' in --backends"),
    (["--backends", ","], "--backends is empty"),
])
def test_bad_backends_give_one_line(argv, message, capsys):
    code, out, err = run(["bench", "--quick", "--synthetic", "--no-plot", *argv], capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1


def test_peers_without_the_compare_extra_give_one_line(monkeypatch, capsys):
    from digitbench import peers

    monkeypatch.setattr(peers, "missing_peers", lambda: ["torch==2.13.0"])
    code, out, err = run(["bench", "--quick", "--synthetic", "--no-plot", "--backends", "numpy", "--peers"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--peers needs the 'compare' extra" in err and "pip install" in err


def test_the_blas_line_says_when_the_environment_forces_openblas_kernels(monkeypatch):
    from digitbench import bench_report

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    forced = bench.blas_kernels()
    assert forced[-1] == "OPENBLAS_CORETYPE=Haswell" and forced[0].startswith("openblas ")
    assert bench_report.format_blas(forced).endswith("it forces these kernels, whatever the CPU has)")
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    chosen = bench.blas_kernels()
    assert chosen == forced[:-1]  # the library loaded earlier keeps its kernels; only the note goes
    assert "forces" not in bench_report.format_blas(chosen)
    assert bench_report.format_blas([]) == "none loaded"


def test_the_table_caps_shares_and_shows_no_dense_share_for_a_sparse_backend():
    from digitbench.bench_report import format_table

    base = {"train_samples_per_s": 1e6, "epoch_seconds": 0.06, "epoch_extrapolated": False,
            "infer_samples_per_s": 1e6, "infer_samples_timed": 10_000, "latency_s": 1e-5, "first_call_seconds": 0.1}
    records = [{**base, "name": "numba", "sparse_input": True, "share_of_peak": 2.39, "share_of_peak_done": 0.684,
                "thread_choice": {"threads": 1, "max_threads": 2, "reason": "1 thread measured fastest"}},
               {**base, "name": "naive", "share_of_peak": 1e-4, "share_of_peak_done": 1e-4, "threads_used": 1},
               {**base, "name": "numpy", "share_of_peak": 1.2, "share_of_peak_done": 1.2, "threads_used": 2}]
    rows = {line.split()[0]: line.split() for line in format_table(records, 400.0, False).splitlines()[2:5]}
    assert rows["numba"][1] == "1" and rows["numba"][5:7] == ["-", "68.4"]
    assert rows["numpy"][1] == "2" and rows["numpy"][5:7] == [">100", ">100"]
    assert rows["naive"][1] == "1"
