"""The method table (methods.py) and the one declaration each layer makes (adapters/base.py): every row
has its config and class, the former method lists read the table, the table and the sweep load without
torch, the readable forward is each method's docstring equation, a method not of low-rank form is
handled or refused clearly, and docs/methods.md's worked example works."""
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

import adapters
import methods
from adapters.base import AdapterLayer
from test_adapters import base_model, logits, perturb

ROOT = Path(__file__).resolve().parent.parent
LOW_RANK_CASES = [("lora", {}), ("symlora", {}), ("symlora", {"learn_lambda": False}), ("delora", {}),
                  ("delora", {"sigma": "diagonal"}), ("b_only", {}), ("a_only", {})]


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_every_row_has_its_config_and_class(name):
    row = methods.get(name)
    cfg = OmegaConf.load(ROOT / "configs" / "adapter" / f"{name}.yaml")
    assert cfg.name == name
    assert dict(cfg.options) == dict(row.options)  # the config's options are the row's, with its defaults
    assert (cfg.rank >= 1 and len(cfg.targets) > 0) == row.takes_rank
    if row.layer is None:
        assert not row.from_lora and not row.square_only
        return
    cls = row.layer_class()
    assert issubclass(cls, AdapterLayer) and cls.low_rank == row.low_rank
    accepted = inspect.signature(cls).parameters
    assert set(row.layer_args) | set(row.options) <= set(accepted)
    assert cls.scaled_factors is not AdapterLayer.scaled_factors or not row.low_rank


def test_unknown_method_names_every_known_one():
    with pytest.raises(ValueError, match="unknown method 'lorra'; known methods: lora, symlora"):
        methods.get("lorra")
    with pytest.raises(ValueError, match="unknown method 'lorra'"):
        adapters.inject(base_model(), "lorra")


def test_a_square_only_method_names_the_non_square_targets():
    model = base_model()
    with pytest.raises(ValueError, match=r"symlora needs square weights; targets \['dense'\] match non-square "
                                         r"ones: roberta.encoder.layer.0.intermediate.dense \(d_out=64, d_in=32\), "):
        adapters.inject(model, "symlora", rank=2, targets=("dense",))
    assert not list(adapters.adapter_layers(model))  # nothing injected


def test_the_former_lists_read_the_table():
    from adapters.baselines import BASELINES
    from training import pack_rules, schema
    from training.model import FROM_LORA

    assert schema.ADAPTERS == methods.names()
    ours = set(methods.names(peft=False))
    assert set(schema.LOW_RANK) == ours - {"head_only", "bitfit", "full"}
    assert set(schema.PEFT_ADAPTERS) == set(methods.names()) - ours
    assert BASELINES == ("head_only", "bitfit", "full")
    assert FROM_LORA == ("lora_of_lora", "lora_head_only")
    assert [m for m in methods.names(peft=False) if not pack_rules.packable(m)] == ["bitfit", "full"]
    assert not any(pack_rules.packable(m) for m in methods.names(peft=True))
    assert methods.get("symlora").square_only and not methods.get("lora").square_only
    # a row whose layers are not of the low-rank form is not fusable, whatever else it is
    assert not methods.Method("x", "", layer="m:C", low_rank=False).fusable
    assert methods.Method("x", "", layer=None).fusable


def test_the_table_and_a_sweep_plan_load_without_torch(tmp_path):
    """sweep.py's dry run of the LoRA-of-LoRA grid (its MNLI LoRA groups come from the table's
    `from_lora`) imports neither torch nor transformers (python -X importtime lists every import)."""
    out = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "sweep.py"), "grid=delora_table3",
                          f"results_dir={tmp_path}", "dry_run=true", "throughput=100"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mnli/lora/" in out.stdout and "rte/lora_of_lora/" in out.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "methods" in imported and "sweeping.dependencies" in imported
    assert not imported & {"torch", "transformers", "datasets", "peft"}


# -- the one declaration -------------------------------------------------------------------------
def _equation(layer, x):
    """Each method's docstring equation, from its own named tensors (the hand computation)."""
    w0, b, s = layer.base.weight, layer.base.bias, layer.scaling
    if layer.method == "symlora":
        lam = 1.0 if layer.lam is None else layer.lam
        return lam * (x @ w0.T) + b + s * x @ (layer.Q @ torch.diag(layer.Lambda) @ layer.Q.T).T
    if layer.method == "delora":
        sigma = torch.diag(layer.delora_Sigma) if layer.diagonal else layer.delora_Sigma
        return x @ w0.T + b + s * x @ (layer.delora_B @ sigma @ layer.delora_A).T
    return x @ w0.T + b + s * x @ (layer.lora_B @ layer.lora_A).T  # lora, b_only, a_only


@pytest.mark.parametrize("method, options", LOW_RANK_CASES,
                         ids=[m + "".join(f"-{v}" for v in o.values()) for m, o in LOW_RANK_CASES])
def test_forward_delta_and_factors_are_the_docstring_equation(method, options):
    model = base_model()
    adapters.inject(model, method, rank=4, alpha=8, **options)  # s = 2
    perturb(model)
    x = torch.randn(3, 5, 32, generator=torch.Generator().manual_seed(2))
    for _, layer in adapters.adapter_layers(model):
        with torch.no_grad():
            expected = _equation(layer, x)
            torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
            lam = layer.base_scale()
            frozen = x @ layer.base.weight.T * (1.0 if lam is None else lam) + layer.base.bias
            torch.testing.assert_close(x @ layer.delta_weight().T, expected - frozen, rtol=1e-4, atol=1e-5)
            b, a = layer.factors()
            torch.testing.assert_close(b @ a, layer.delta_weight())


def test_the_forward_never_builds_the_full_update():
    """The readable forward costs two thin matmuls, not a d_out × d_in product (counted by torch's
    FLOP counter: ΔW alone would be d·d·r multiply-adds per layer)."""
    from torch.utils.flop_counter import FlopCounterMode

    for method in ("lora", "symlora", "delora"):
        layer = methods.get(method).layer_class()(nn.Linear(64, 64), rank=2)
        x = torch.randn(1, 64)
        with FlopCounterMode(display=False) as counter:
            layer(x)
        assert counter.get_total_flops() < 2 * 64 * 64 * 2, method  # the frozen matmul (2·64·64) and O(64·r)


class DiagonalLayer(AdapterLayer):
    """A method not of the low-rank form: h = W0 x + b + d ⊙ x (a full-rank diagonal update)."""

    method = "diagonal"
    low_rank = False

    def __init__(self, base, rank=1, alpha=None, dropout=0.0, name="?", generator=None):
        super().__init__(base, rank, alpha, dropout, name)
        self.d = nn.Parameter(self._factor(torch.zeros(self.d_in)))

    def update(self, x):
        return self.dropout(x) * self.d

    def delta_weight(self):
        return torch.diag(self.d)


def test_a_method_not_of_the_low_rank_form_merges_and_is_refused_clearly(tmp_path):
    model = base_model()
    adapters.inject(model, "lora", rank=2)
    for name, layer in list(adapters.adapter_layers(model)):
        from adapters.inject import set_submodule
        set_submodule(model, name, DiagonalLayer(layer.base, name=name))
    perturb(model)
    assert not torch.allclose(logits(model), logits(base_model()))
    torch.testing.assert_close(logits(adapters.merge(model)), logits(model), rtol=1e-5, atol=1e-5)
    rows = adapters.layer_norms(model)
    layer = next(l for _, l in adapters.adapter_layers(model))
    assert rows[0]["delta_norm"] == pytest.approx(float(torch.linalg.norm(layer.d.detach())))
    with pytest.raises(ValueError, match=r"\(diagonal, lambda=None\) is not a plain LoRA update; use export_merged"):
        adapters.export_peft(model, tmp_path / "peft")
    with pytest.raises(NotImplementedError, match="diagonal: scaled_factors.. needs the low-rank form"):
        layer.factors()


# -- docs/methods.md's worked example ---------------------------------------------------------------
def _doc_blocks():
    text = (ROOT / "docs" / "methods.md").read_text()
    blocks = re.findall(r"```(python|yaml)\n(.*?)```", text, re.S)
    python = [code for kind, code in blocks if kind == "python"]
    [config] = [code for kind, code in blocks if kind == "yaml"]
    return python[0], python[1], config


@pytest.fixture
def rslora(tmp_path, monkeypatch):
    """The doc's layer file as a module, and its row added to the table (as the doc says to)."""
    layer_file, row_line, config = _doc_blocks()
    (tmp_path / "rslora_example.py").write_text(layer_file)
    monkeypatch.syspath_prepend(str(tmp_path))
    row = eval(row_line.strip().rstrip(","), {"Method": methods.Method})
    assert row.layer == "adapters.rslora:RsLoRALayer"
    row = methods.Method(row.name, row.summary, layer="rslora_example:RsLoRALayer")
    monkeypatch.setattr(methods, "METHODS", {**methods.METHODS, row.name: row})
    cfg = OmegaConf.create(config)
    assert cfg.name == "rslora" and dict(cfg.options) == dict(row.options)
    return row


def test_the_documented_example_method_works(rslora, tmp_path):
    peft = pytest.importorskip("peft")
    ours = base_model()
    names = adapters.inject(ours, "rslora", rank=4, alpha=8)
    torch.testing.assert_close(logits(ours), logits(base_model()))  # step 0 is the base model
    layer = ours.get_submodule(names[0])
    assert layer.scaling == pytest.approx(8 / 2)  # alpha / √r
    with torch.no_grad():  # the adapter only: the head stays the base model's, as PEFT's is
        for name in names:
            ours.get_submodule(name).lora_B.normal_(generator=torch.Generator().manual_seed(3))
    reference = peft.get_peft_model(base_model(), peft.LoraConfig(
        r=4, lora_alpha=8, use_rslora=True, target_modules=["query", "value"], task_type="SEQ_CLS")).eval()
    with torch.no_grad():
        for name in names:
            theirs = reference.base_model.model.get_submodule(name)
            theirs.lora_A["default"].weight.copy_(ours.get_submodule(name).lora_A)
            theirs.lora_B["default"].weight.copy_(ours.get_submodule(name).lora_B)
    torch.testing.assert_close(logits(ours), logits(reference), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits(adapters.merge(ours)), logits(ours), rtol=1e-5, atol=1e-5)
    exported = adapters.export_peft(ours, tmp_path / "peft")
    loaded = peft.PeftModel.from_pretrained(base_model(), str(exported)).eval()
    torch.testing.assert_close(logits(loaded), logits(ours), rtol=1e-5, atol=1e-5)
    assert rslora.fusable


def test_the_documented_example_packs(rslora):
    """K runs of the example stacked in one PackedLayer give each run's own output (the fused kernels
    read its scaled_factors)."""
    from adapters.packed import PackedLayer, own_tensors

    base = nn.Linear(16, 16)
    cls = rslora.layer_class()
    layers = [cls(base, 4, 8, name="q", generator=adapters.module_generator(k, "q")) for k in range(3)]
    with torch.no_grad():
        for layer in layers:
            layer.lora_B.normal_()
    stacked = {n: torch.stack([own_tensors(layer)[n] for layer in layers]) for n in own_tensors(layers[0])}
    packed = PackedLayer(layers[0], stacked, runs=3)
    x = torch.randn(6, 5, 16)
    out = packed(x)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out[2 * k:2 * k + 2], layer(x[2 * k:2 * k + 2]))
        torch.testing.assert_close(out[2 * k:2 * k + 2], F.linear(x[2 * k:2 * k + 2], base.weight + layer.delta_weight(),
                                                                  base.bias))
