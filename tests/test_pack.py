"""Packs: K runs trained in one pass over a shared frozen backbone give the numbers, files and
weights of the same K runs trained one by one, dropout on (each run draws from its own streams)."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from training.config import compose
from training.pack import pack_jobs
from training.run import run, run_pack
from rundir import run_dir
from tests.conftest import token_layout

TIMING = ("time_s", "examples_per_s")
MEMBERS = [["seed=0", "lr=1e-3"], ["seed=1", "lr=3e-3"], ["seed=2", "lr=1e-3", "optim.weight_decay=0.0"]]


def jobs(tiny_run, where, method, task="rte", members=MEMBERS):
    base = [f"task={task}", f"adapter={method}", "init_from=null", "epochs=2", "model.dropout=0.1", "engine=fused",
            *(["adapter.dropout=0.1"] if method != "head_only" else []), f"results_dir={where}"]
    return [tiny_run(*base, *member) for member in members]


def close(a, b, path="", rel=1e-4):
    """Equal dicts, floats within tolerance (timing fields ignored)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            if key not in TIMING:
                close(a[key], b[key], f"{path}.{key}", rel)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=rel, abs=1e-4) or (math.isnan(a) and math.isnan(b)), path
    else:
        assert a == b, path


@pytest.mark.parametrize("method, task", [("lora", "rte"), ("symlora", "sst2"), ("delora", "mnli"),
                                          ("b_only", "cola"), ("head_only", "rte")])
def test_pack_equals_separate_runs(tiny_run, tmp_path, method, task):
    separate = [run(cfg, overrides) for cfg, overrides in jobs(tiny_run, tmp_path / "one", method, task)]
    packed = run_pack(jobs(tiny_run, tmp_path / "pack", method, task))
    for (cfg_one, _), (cfg_pack, _), alone, together in zip(
            jobs(tiny_run, tmp_path / "one", method, task), jobs(tiny_run, tmp_path / "pack", method, task),
            separate, packed):
        assert together["status"] == "done", together["reason"]
        close(together, alone)
        one, pack = run_dir(cfg_one), run_dir(cfg_pack)
        assert pack.relative_to(tmp_path / "pack") == one.relative_to(tmp_path / "one")
        lines = lambda d: [json.loads(x) for x in (d / "epochs.jsonl").read_text().splitlines()]  # noqa: E731
        for a, b in zip(lines(one), lines(pack), strict=True):
            close(a, b)
        weights_one, weights_pack = load_file(one / "adapter.safetensors"), load_file(pack / "adapter.safetensors")
        assert weights_one.keys() == weights_pack.keys()
        for key in weights_one:
            torch.testing.assert_close(weights_pack[key], weights_one[key], rtol=1e-4, atol=1e-5)
        assert sorted(p.name for p in (one / "predictions").iterdir()) == \
            sorted(p.name for p in (pack / "predictions").iterdir())
        for f in (one / "predictions").iterdir():  # class predictions: identical
            assert f.read_text() == (pack / "predictions" / f.name).read_text(), f.name
        assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in pack.iterdir())


def test_a_diverging_run_fails_alone(tiny_run, tmp_path):
    members = [["seed=0", "lr=1e-3"], ["seed=1", "lr=1e30"]]
    packed = run_pack(jobs(tiny_run, tmp_path / "pack", "lora", members=members))
    assert packed[1]["status"] == "failed" and "non-finite" in packed[1]["reason"]
    alone = run(*jobs(tiny_run, tmp_path / "one", "lora", members=members[:1])[0])
    assert packed[0]["status"] == "done"
    close(packed[0], alone)


def test_what_cannot_be_packed(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="cannot be packed"):
        run_pack(jobs(tiny_run, tmp_path, "full"))
    mixed = jobs(tiny_run, tmp_path, "lora")[:1] + [tiny_run("task=rte", "init_from=null", "batch_size=8")]
    with pytest.raises(ValueError, match="batch_size"):
        run_pack(mixed)


def test_pack_settings_expand_to_the_runs_a_lone_run_would_be():
    overrides = ["task=rte", "pack.seed=[0,1]", "pack.lr=[1e-4,5e-4]"]
    expanded = pack_jobs(compose(overrides), overrides)
    assert [(cfg.seed, cfg.lr) for cfg, _ in expanded] == [(0, 1e-4), (0, 5e-4), (1, 1e-4), (1, 5e-4)]
    for cfg, member_overrides in expanded:
        assert run_dir(cfg) == run_dir(compose(["task=rte", f"seed={cfg.seed}", f"lr={cfg.lr}"]))
        assert not any(o.startswith("pack.") for o in member_overrides)
    overrides = ["task=rte", 'pack.members=[["seed=3","lr=1e-3"],["seed=4"]]']
    assert [(c.seed, c.lr) for c, _ in pack_jobs(compose(overrides), overrides)] == [(3, 1e-3), (4, 5e-4)]
    assert len(pack_jobs(compose(["task=rte"]), ["task=rte"])) == 1


@pytest.mark.parametrize("method", ["lora", "symlora", "delora", "b_only"])
def test_packed_layer_slices_equal_each_run_alone(method):
    """The K-stacked layer (two batched matmuls, λ_k ≠ 1 for SymLoRA) gives, on run k's rows, what run
    k's own layer gives alone."""
    import adapters
    from adapters.inject import ADAPTER_METHODS
    from adapters.packed import PackedLayer, own_tensors

    torch.manual_seed(0)
    base = torch.nn.Linear(16, 16)
    factory = ADAPTER_METHODS[method][0]
    layers = [factory(base, 4, 8, name="q", generator=adapters.module_generator(k, "q")) for k in range(3)]
    for layer in layers:
        with torch.no_grad():
            for p in layer.parameters():
                if p.requires_grad:
                    p.normal_()
    stacked = {n: torch.stack([own_tensors(layer)[n] for layer in layers]) for n in own_tensors(layers[0])}
    packed = PackedLayer(layers[0], stacked, runs=3)
    x = torch.randn(3 * 2, 5, 16)
    out = packed(x)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out[2 * k:2 * k + 2], layer(x[2 * k:2 * k + 2]))


def test_interrupted_pack_resumes_to_the_same_result(tiny_run, tmp_path, monkeypatch):
    import training.checkpoint
    straight = run_pack(jobs(tiny_run, tmp_path / "straight", "lora"))
    real_save, saves = training.checkpoint.save, []

    def save_then_die(directory, *args):
        real_save(directory, *args)
        saves.append(directory)
        if len(saves) == len(MEMBERS):  # every run has its epoch-1 checkpoint: killed
            raise KeyboardInterrupt

    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_pack(jobs(tiny_run, tmp_path / "resumed", "lora"))
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    resumed = run_pack(jobs(tiny_run, tmp_path / "resumed", "lora"))
    for a, b in zip(straight, resumed):
        close(b, a)


@pytest.mark.parametrize("runs", [1, 3])
@pytest.mark.parametrize("dropped", [False, True, "mask"])
def test_low_rank_linear_matches_autograd_over_the_same_expression(runs, dropped):
    """The hand-written forward and backward of a packed adapted linear over a token stream (one run:
    plain matmuls; a pack: the zero-padded grid) give autograd's values and gradients."""
    from adapters.packed import LowRankLinear, Update

    torch.manual_seed(0)
    lengths, d_in, d_out, r, scale = [5, 2, 4][:runs], 6, 7, 3, 0.5
    tokens = sum(lengths)
    layout = token_layout(lengths)
    x = torch.randn(tokens, d_in, requires_grad=True)
    weight, bias = torch.randn(d_out, d_in), torch.randn(d_out)
    b = torch.randn(runs, d_out, r, requires_grad=True)
    a = torch.randn(runs, r, d_in, requires_grad=True)
    mask = (torch.rand(tokens, d_in) > 0.3).float() * 2 if dropped else None

    def reference():
        inputs = x * mask if dropped else x
        update = torch.einsum("tr,tor->to", torch.einsum("td,trd->tr", inputs, a[layout.member]), b[layout.member])
        return x @ weight.t() + bias + scale * update

    g = torch.randn(tokens, d_out)
    want = reference()
    want_grads = torch.autograd.grad(want, (x, b, a), g)
    update = Update(0, d_out, scale, masked=dropped == "mask", dropped=dropped is True)
    extra = x * mask if dropped is True else mask
    got = LowRankLinear.apply(x, layout, (update,), weight, bias, b, a, extra)
    got_grads = torch.autograd.grad(got, (x, b, a), g)
    torch.testing.assert_close(got, want)
    for got_grad, want_grad in zip(got_grads, want_grads):
        torch.testing.assert_close(got_grad, want_grad)
