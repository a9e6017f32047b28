"""Records kept per machine: two machines' records both kept and both rendered, side by side."""

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def tools():
    sys.path.insert(0, str(TOOLS))
    try:
        return importlib.import_module("machines"), importlib.import_module("results_page")
    finally:
        sys.path.remove(str(TOOLS))


ZEN5 = {"cpu": "AMD EPYC", "family": "26", "isa": "AVX-512", "cores": 2, "blas": "openblas 0.3.30 SkylakeX",
        "coretype": None}
ZEN3 = {"cpu": "AMD EPYC", "family": "25", "isa": "AVX2", "cores": 2, "blas": "openblas 0.3.30 Zen",
        "coretype": None}


def entry(name, summary, **extra):
    return {"name": name, "command": f"digitbench {name}", "date": "2026-12-03", "machine": "-",
            "versions": {"python": "3.11.7", "commit": "abc1234"}, "wall_seconds": 1.0, "placeholder": False,
            "json": summary, "stdout": "printed", **extra}


def contender(name, epoch, rate, ratio=None):
    record = {"name": name, "epoch_seconds": epoch, "train_seconds": [epoch] * 5,
              "train_seconds_spread": [epoch * 0.9, epoch * 1.2], "train_samples_per_s": rate}
    if ratio:
        record |= {"train_vs_pytorch": ratio[0], "train_vs_pytorch_ci": ratio[1:]}
    return record


def bench(numba_epoch, ratio, accuracy):
    closed = {"seconds": 0.1, "spread": [0.09, 0.13], "accuracy": accuracy, "accuracy_ci": [accuracy - 0.0004,
              accuracy + 0.0004], "at_target": 1.0, "seeds": 20, "reached": True, "recipe": "fast", "rule": "-"}
    return {"threads": 2, "batch_size": 64, "repeats": 5, "gemm_peak_gflops": 100.0, "disturbed": [],
            "contenders": [contender("numba", numba_epoch, 60_000 / numba_epoch, ratio),
                           contender("pytorch", 0.45, 60_000 / 0.45, (1.0, 1.0, 1.0))],
            "time_to_target": {"numba": {"closed": closed, "open": closed}},
            "targets": [{"target": "numba training >= 2.5x pytorch", "value": ratio[0], "interval": ratio[1:],
                         "of": "pytorch", "status": "met" if ratio[1] >= 2.5 else "inconclusive"}]}


def test_machines_differing_in_isa_get_their_own_folders(tools):
    machines, _ = tools
    assert machines.machine_id(ZEN5) != machines.machine_id(ZEN3)
    assert "avx-512" in machines.machine_id(ZEN5) and "avx2" in machines.machine_id(ZEN3)
    forced = machines.machine_id(ZEN5 | {"coretype": "Haswell"})
    assert forced != machines.machine_id(ZEN5) and forced.endswith("haswell-forced")
    assert machines.isa_level(["sse2", "avx", "avx2", "avx512f"]) == "AVX-512"
    assert machines.isa_level(["sse2", "avx", "avx2"]) == "AVX2"


def test_two_machines_records_are_both_kept_and_both_rendered(tools, tmp_path):
    machines, page = tools
    machines.save(tmp_path, ZEN5, "bench-peers", entry("bench-peers", bench(0.087, (4.91, 4.50, 5.20), 0.9731)))
    machines.save(tmp_path, ZEN5, "train-seed", entry("train-seed", {
        "test_accuracy": 0.9821, "epochs_run": 30, "train_seconds": 2.67, "eval_seconds": 0.3, "warmup_seconds": 0.3}))
    # the other machine's run of the same records: a folder of its own, nothing overwritten
    machines.save(tmp_path, ZEN3, "bench-peers", entry("bench-peers", bench(0.31, (3.21, 2.40, 4.10), 0.9729)))
    machines.save(tmp_path, ZEN3, "sweeps/batch", entry("sweeps/batch", {"axis": "batch_size", "points": [
        {"name": "numba", "batch_size": 64, "train_samples_per_s": 190_000.0, "infer_samples_per_s": 1e6}]}))
    on_record = machines.load(tmp_path)
    assert len(on_record) == 2
    assert set(on_record[machines.machine_id(ZEN5)]["records"]) == {"bench-peers", "train-seed"}
    assert set(on_record[machines.machine_id(ZEN3)]["records"]) == {"bench-peers", "sweeps/batch"}
    text = page.page(on_record, [])
    headline = page.headline(on_record)
    for shown in (text, "\n".join(headline)):
        assert "AVX-512" in shown and "AVX2" in shown  # both machines are columns
        assert "4.91x [4.50, 5.20]" in shown and "3.21x [2.40, 4.10]" in shown  # ratios with intervals
    # one table a figure, machines as columns: the speed row holds both machines' cells
    (row,) = [line for line in text.splitlines() if line.startswith("| numba | 0.310 s")]
    assert "0.310 s (0.279-0.372)" in row and "0.087 s (0.078-0.104)" in row
    assert "97.31% [97.27, 97.35]" in text and "20/20 seeds at 97%" in text
    assert "## Sweep: batch" in text and "190,000" in text
    assert "met" in text and "inconclusive" in text


def test_committed_records_are_filed_per_machine_without_internal_words(tools):
    machines, _ = tools
    results = Path(__file__).resolve().parents[1] / "docs" / "results"
    if not results.is_dir():
        pytest.skip("documentation not shipped in the wheel")
    on_record = machines.load(results)
    assert len(on_record) >= 2
    for folder, found in on_record.items():
        assert machines.machine_id(found["machine"]) == folder
        for name, entry in found["records"].items():
            text = json.dumps(entry)
            assert not re.search(r"\bissue \d|\"issue\":", text), f"{folder}/{name}"
