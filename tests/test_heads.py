"""Heads with modules besides `classifier` (DistilBERT's `pre_classifier`, DeBERTa-v2's `pooler`): fresh
weights like the classifier, so they train, are seeded, saved, exported and counted with it, never
carried over by init_from, and packs of such runs give the numbers of the runs alone. Tiny random
models built from configs, with the tiny RoBERTa's tokenizer (CPU, nothing downloaded)."""
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, DebertaV2Config, DistilBertConfig

import adapters
from rundir import run_dir
from test_pack import close
from training.model import build_model, load_init_state
from training.pack import Pack
from training.run import run, run_pack

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 767  # the tiny RoBERTa tokenizer's
CONFIGS = {
    "distilbert": lambda: DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                           pad_token_id=1),
    "deberta-v2": lambda: DebertaV2Config(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64, pad_token_id=1),
}
EXTRA = {"distilbert": "pre_classifier", "deberta-v2": "pooler"}  # the top-level extra head module
EXTRA_WEIGHT = {"distilbert": "pre_classifier.weight", "deberta-v2": "pooler.dense.weight"}


def model_dir(tmp_path, model_type, weights=False) -> Path:
    """A tiny model of `model_type` (config only, or config and random weights) with a tokenizer."""
    directory = tmp_path / f"{model_type}{'-weights' if weights else ''}"
    if not directory.exists():
        config = CONFIGS[model_type]()
        if weights:
            torch.manual_seed(123)
            AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
        else:
            config.save_pretrained(directory)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(ROOT / "assets" / "tiny-roberta" / name, directory / name)
    return directory


def tiny(tiny_run, tmp_path, model_type, *overrides, weights=False):
    """(cfg, overrides) of an RTE LoRA run of the tiny `model_type`."""
    return tiny_run("task=rte", "adapter=lora", "init_from=null",
                    f"model.name_or_path={model_dir(tmp_path, model_type, weights)}",
                    f"model.random_init={str(not weights).lower()}", *overrides)


def extra_state(model, model_type) -> dict[str, torch.Tensor]:
    prefix = EXTRA[model_type] + "."
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


@pytest.mark.parametrize("model_type", CONFIGS)
def test_extras_are_head_seeded_trained_and_saved(tiny_run, tmp_path, model_type):
    cfg, overrides = tiny(tiny_run, tmp_path, model_type, "seed=0")
    model = build_model(cfg, 2)
    assert [name for name, _ in adapters.head_modules(model)] == ["classifier", EXTRA[model_type]]
    extra = getattr(model, EXTRA[model_type])
    assert all(p.requires_grad for p in extra.parameters())

    same = extra_state(build_model(cfg, 2), model_type)
    other = extra_state(build_model(tiny(tiny_run, tmp_path, model_type, "seed=1")[0], 2), model_type)
    init = extra_state(model, model_type)
    weight = EXTRA_WEIGHT[model_type]
    assert all(torch.equal(init[k], same[k]) for k in init)  # same seed, same extras
    assert not torch.equal(init[weight], other[weight])      # another seed, other extras
    assert init[weight].std().item() == pytest.approx(0.02, rel=0.2)  # HF's normal(initializer_range)

    metrics = run(cfg, overrides)
    assert metrics["status"] == "done", metrics["reason"]
    saved = load_file(run_dir(cfg) / "adapter.safetensors")
    assert set(init) <= set(saved)  # saved with the head
    assert not torch.equal(saved[weight], init[weight])  # trained: gradients and optimiser steps reached it
    fresh = build_model(cfg, 2)
    adapters.load_trainable(fresh, run_dir(cfg) / "adapter.safetensors")  # strict: the split round-trips
    assert torch.equal(fresh.state_dict()[weight], saved[weight])
    assert not any(k.startswith(EXTRA[model_type] + ".") for k in adapters.adapter_state_dict(fresh))


def test_init_from_does_not_carry_the_extras(tiny_run, tmp_path):
    mnli_cfg, mnli_overrides = tiny(tiny_run, tmp_path, "distilbert", "task=mnli", "seed=5")
    assert run(mnli_cfg, mnli_overrides)["status"] == "done"
    mnli_file = load_file(run_dir(mnli_cfg) / "adapter.safetensors")
    cfg, overrides = tiny(tiny_run, tmp_path, "distilbert", f"init_from='{run_dir(mnli_cfg)}'")
    started = build_model(cfg, 2, load_init_state(run_dir(mnli_cfg)))
    seeded = build_model(tiny(tiny_run, tmp_path, "distilbert")[0], 2)  # the same seed, from scratch
    for key, tensor in extra_state(started, "distilbert").items():
        assert torch.equal(tensor, seeded.state_dict()[key]), key  # re-initialised from the seed...
        assert not torch.equal(tensor, mnli_file[key]), key         # ...not the MNLI run's
    for key, tensor in adapters.adapter_state_dict(started).items():
        assert torch.equal(tensor, mnli_file[key]), key  # the adapter does carry over
    assert run(cfg, overrides)["status"] == "done"

    # lora_head_only continues the MNLI LoRA frozen: the whole new head trains, extras included
    head_only = build_model(tiny(tiny_run, tmp_path, "distilbert", "adapter=lora_head_only",
                                 f"init_from='{run_dir(mnli_cfg)}'")[0], 2, load_init_state(run_dir(mnli_cfg)))
    trained = {n for n, p in head_only.named_parameters() if p.requires_grad}
    assert trained == {n for n, _ in head_only.named_parameters() if n.startswith(("classifier.", "pre_classifier."))}


def test_exported_peft_adapter_gives_the_same_logits(tiny_run, tmp_path):
    peft = pytest.importorskip("peft")
    cfg, _ = tiny(tiny_run, tmp_path, "distilbert", "model.dropout=0", weights=True)
    model = build_model(cfg, 2).eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():  # LoRA away from its zero start, the head away from the checkpoint's
        for _, layer in adapters.adapter_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=generator) * 0.3)
        for p in model.pre_classifier.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    ids = torch.randint(3, VOCAB, (4, 9), generator=generator)
    ours = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    directory = adapters.export_peft(model, tmp_path / "peft")
    base = AutoModelForSequenceClassification.from_pretrained(model_dir(tmp_path, "distilbert", True), num_labels=2,
                                                              seq_classif_dropout=0.0)
    assert not torch.equal(base.pre_classifier.weight, model.pre_classifier.weight)
    loaded = peft.PeftModel.from_pretrained(base, str(directory)).eval()
    with torch.no_grad():
        theirs = loaded(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    torch.testing.assert_close(theirs, ours.detach(), rtol=1e-5, atol=1e-5)


def test_pack_of_distilbert_runs_equals_the_runs_alone(tiny_run, tmp_path, caplog):
    members = [["seed=0", "lr=1e-3"], ["seed=1", "lr=3e-3"]]
    common = ["model.dropout=0.1", "adapter.dropout=0.1", "epochs=2"]
    jobs = lambda where: [tiny(tiny_run, tmp_path, "distilbert", *common, *m, f"results_dir={where}")  # noqa: E731
                          for m in members]
    alone = [run(cfg, overrides) for cfg, overrides in jobs(tmp_path / "one")]
    with caplog.at_level("INFO", logger="train"):
        packed = run_pack(jobs(tmp_path / "pack"))
    assert "one after another" in caplog.text
    for (cfg_one, _), (cfg_pack, _), a, b in zip(jobs(tmp_path / "one"), jobs(tmp_path / "pack"), alone, packed):
        assert b["status"] == "done", b["reason"]
        close(b, a)
        one, pack = load_file(run_dir(cfg_one) / "adapter.safetensors"), load_file(run_dir(cfg_pack) / "adapter.safetensors")
        assert one.keys() == pack.keys() and "pre_classifier.weight" in one
        for key in one:
            torch.testing.assert_close(pack[key], one[key], rtol=1e-4, atol=1e-5)
    assert not torch.equal(*(load_file(run_dir(c) / "adapter.safetensors")["pre_classifier.weight"]
                             for c, _ in jobs(tmp_path / "pack")))  # each run its own extras

    # packing them anyway is refused, never done wrong
    (cfg0, _), (cfg1, _) = jobs(tmp_path / "x")
    first = build_model(cfg0, 2)
    pack = Pack(first, "classifier")
    pack.add(cfg0, tmp_path / "x0", first)
    with pytest.raises(ValueError, match="pre_classifier.*cannot be packed"):
        pack.add(cfg1, tmp_path / "x1", build_model(cfg1, 2))


def test_trainable_count_of_distilbert_lora(tiny_run, tmp_path):
    cfg, _ = tiny(tiny_run, tmp_path, "distilbert", "adapter.rank=4")
    model = build_model(cfg, 2)
    c = model.config
    lora = c.n_layers * 2 * 4 * (c.dim + c.dim)  # q_lin and v_lin: A (r × d) and B (d × r)
    classifier = c.dim * 2 + 2
    pre_classifier = c.dim * c.dim + c.dim
    assert adapters.count_trainable(model) == {"adapter": lora, "head": classifier + pre_classifier,
                                               "with_head": lora + classifier + pre_classifier}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == lora + classifier + pre_classifier
