"""Equivalence with PEFT: our LoRA vs PEFT's LoRA, and PEFT export loaded by PeftModel."""
import pytest
import torch

import adapters

peft = pytest.importorskip("peft")
from test_adapters import EXPORTABLE, base_model, injected, logits, perturb  # noqa: E402


@pytest.mark.parametrize("alpha", [8, 16])
def test_lora_matches_peft(alpha):
    pm = peft.get_peft_model(base_model(), peft.LoraConfig(
        r=8, lora_alpha=alpha, target_modules=["query", "value"], task_type="SEQ_CLS"))
    pm.eval()
    ours = base_model()
    names = adapters.inject(ours, "lora", rank=8, alpha=alpha)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name in names:
            pl = pm.base_model.model.get_submodule(name)
            pl.lora_B["default"].weight.copy_(torch.randn(pl.lora_B["default"].weight.shape,
                                                          generator=g) * 0.3)
            ol = ours.get_submodule(name)
            ol.lora_A.copy_(pl.lora_A["default"].weight)
            ol.lora_B.copy_(pl.lora_B["default"].weight)
    ref = logits(pm)
    assert not torch.allclose(ref, logits(base_model()))
    torch.testing.assert_close(logits(ours), ref, rtol=1e-5, atol=1e-6)


def _peft_logits(directory):
    loaded = peft.PeftModel.from_pretrained(base_model(), str(directory))
    return logits(loaded.eval())


@pytest.mark.parametrize("method, kw", EXPORTABLE,
                         ids=[m + "".join(f"-{v}" for v in o.values()) for m, o in EXPORTABLE])
def test_export_peft_round_trip(method, kw, tmp_path):
    m = injected(method, alpha=8, **kw)  # rank 4, scaling 2: checks the folding
    perturb(m)
    if method == "symlora" and kw.get("learn_lambda", True):
        with torch.no_grad():
            for _, l in adapters.adapter_layers(m):
                l.lam.fill_(1.0)
    ours = logits(m)
    assert not torch.allclose(ours, logits(base_model()))
    d = adapters.export_peft(m, tmp_path / "peft")
    assert {p.name for p in d.iterdir()} == {"adapter_config.json", "adapter_model.safetensors"}
    torch.testing.assert_close(_peft_logits(d), ours, rtol=1e-5, atol=1e-5)


def test_export_lora_of_lora(tmp_path):
    lora = injected("lora")
    perturb(lora)
    m = base_model()
    adapters.lora_of_lora(m, lora)
    perturb(m, gen_seed=5)
    d = adapters.export_peft(m, tmp_path / "peft")
    torch.testing.assert_close(_peft_logits(d), logits(m), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["symlora", "bitfit", "full"])
def test_not_peft_exportable_then_merged(method, tmp_path):
    from transformers import RobertaForSequenceClassification
    m = injected(method)
    perturb(m)  # symlora: lambda = 0.7
    with pytest.raises(ValueError, match="export_merged"):
        adapters.export_peft(m, tmp_path / "peft")
    d = adapters.export_merged(m, tmp_path / "merged")
    loaded = RobertaForSequenceClassification.from_pretrained(str(d)).eval()
    torch.testing.assert_close(logits(loaded), logits(m), rtol=1e-5, atol=1e-5)
    assert len(list(adapters.adapter_layers(m))) == len(m._adapters_meta["modules"])


def test_training_does_not_import_peft():
    import subprocess
    import sys
    code = ("import sys, torch, adapters\n"
            "from transformers import RobertaConfig, RobertaForSequenceClassification as R\n"
            "m = R(RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,"
            " num_attention_heads=2, intermediate_size=32))\n"
            "adapters.inject(m, 'delora', rank=2); adapters.merge(m)\n"
            "import tempfile; adapters.export_peft(m, tempfile.mkdtemp())\n"
            "assert 'peft' not in sys.modules, 'peft imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
