"""The throughput benchmark runs on CPU with the tiny model and writes one JSON object per setup."""
import json
import math
import subprocess
import sys

from benchmarks import throughput
from benchmarks.launches import count_launches
from training.config import HARNESS_ROOT


def test_benchmark_writes_every_field(tmp_path):
    path = tmp_path / "throughput.json"
    out = subprocess.run([sys.executable, "benchmarks/throughput.py", "--model", "tiny", "--device", "cpu",
                          "--steps", "1", "--rounds", "1", "--warmup", "1", "--packs", "1,2", "--max-len", "64",
                          "--batch-size", "4", "--json", str(path)],
                         cwd=HARNESS_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(path.read_text())
    assert [r["setup"] for r in rows] == ["PEFT LoRA, plain loop, padded to L", "reference engine, 1 run",
                                          "fused engine, 1 run", "fused engine, pack of 2"]
    assert [r["runs"] for r in rows] == [1, 1, 1, 2]
    for r in rows:
        assert set(throughput.FIELDS) <= r.keys()
        assert r["examples_s"] > 0 and 0 < r["real_token_fraction"] <= 1 and r["launches_per_step"] > 0
        assert r["host_syncs_per_step"] >= 0
        assert r["real_tok_s"] == r["processed_tok_s"] * r["real_token_fraction"] or \
            math.isclose(r["real_tok_s"], r["processed_tok_s"] * r["real_token_fraction"])
    assert rows[0]["ratio_to_baseline"] == 1.0
    assert "| fused engine, pack of 2 |" in out.stdout


def test_host_sync_counter_counts_scalar_reads():
    import torch

    from benchmarks.launches import count_host_syncs
    x = torch.ones(4)
    syncs, kinds = count_host_syncs(lambda: (x.sum().item(), (x > 0).nonzero(), x * 2))
    assert syncs == 2 and kinds == {"read": 1, "shape": 1}


def test_launch_counter_counts_kernels_not_views():
    import torch
    x = torch.ones(4, 4)
    launches, ops = count_launches(lambda: (x.view(16) * 2).view(4, 4).t().contiguous() + x)
    assert launches == 3 and ops == {"mul": 1, "clone": 1, "add": 1}
