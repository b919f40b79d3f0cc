"""The throughput benchmark runs on CPU with the tiny model and prints its table."""
import math

from benchmarks import throughput


def test_benchmark_smoke(capsys):
    rows = throughput.main(["--model", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1",
                            "--packs", "1,2", "--max-len", "64", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert "| PEFT LoRA, plain loop, padded to L |" in out and "| ours, pack of 2, dynamic padding |" in out
    assert [r["runs"] for r in rows] == [1, 1, 1, 2]
    for r in rows:
        assert r["examples_s"] > 0 and r["real_tok_s"] <= r["padded_tok_s"] and math.isfinite(r["tflops"])
