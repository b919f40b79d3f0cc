"""Models other than RoBERTa: adapter targets from the architecture table, `score` heads, dropout keys.
Tiny random configs, built from config (nothing downloaded)."""
import pytest
import torch
from transformers import (BertConfig, DebertaV2Config, DistilBertConfig, GPT2Config, LlamaConfig,
                          RobertaConfig)

import adapters
from training.model import build_model

SMALL = dict(vocab_size=100, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, hidden_size=32)
CONFIGS = {
    "roberta": (RobertaConfig(**SMALL), ("query", "value")),
    "bert": (BertConfig(**SMALL), ("query", "value")),
    "distilbert": (DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64), ("q_lin", "v_lin")),
    "deberta-v2": (DebertaV2Config(**SMALL), ("query_proj", "value_proj")),
    "llama": (LlamaConfig(**SMALL, num_key_value_heads=2, eos_token_id=2), ("q_proj", "v_proj")),
}


def tiny_model(tiny_run, tmp_path, config, *overrides):
    config.save_pretrained(tmp_path / "model")
    cfg, _ = tiny_run("task=rte", "init_from=null", f"model.name_or_path={tmp_path / 'model'}",
                      "model.random_init=true", *overrides)
    return cfg


@pytest.mark.parametrize("model_type", CONFIGS)
def test_lora_on_the_query_and_value_of_each_architecture(tiny_run, tmp_path, model_type):
    config, projections = CONFIGS[model_type]
    cfg = tiny_model(tiny_run, tmp_path, config, "model.dropout=0")
    model = build_model(cfg, num_labels=2)
    wrapped = [name for name, _ in adapters.adapter_layers(model)]
    assert len(wrapped) == 2 * 2 and {name.rpartition(".")[2] for name in wrapped} == set(projections)
    head_name, head = adapters.find_head(model)
    ids = torch.randint(3, 100, (3, 7))
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert logits.shape == (3, 2)
    logits.sum().backward()
    assert all(p.requires_grad and p.grad is not None for p in head.parameters())
    adapter_params = [p for _, layer in adapters.adapter_layers(model) for p in layer.parameters() if p.requires_grad]
    assert adapter_params and all(p.grad is not None for p in adapter_params)
    assert adapters.count_trainable(model)["adapter"] == sum(p.numel() for p in adapter_params)


def test_score_head_is_seeded_like_a_classifier(tiny_run, tmp_path):
    config, _ = CONFIGS["llama"]
    heads = [adapters.find_head(build_model(tiny_model(tiny_run, tmp_path, config, f"seed={s}"), 2))
             for s in (0, 0, 1)]
    assert heads[0][0] == "score" and heads[0][1].bias is None
    assert torch.equal(heads[0][1].weight, heads[1][1].weight)
    assert not torch.equal(heads[0][1].weight, heads[2][1].weight)


def test_model_dropout_reaches_each_architecture(tiny_run, tmp_path):
    for model_type in ("distilbert", "deberta-v2", "bert"):
        config, _ = CONFIGS[model_type]
        model = build_model(tiny_model(tiny_run, tmp_path, config, "model.dropout=0"), 2)
        encoder = getattr(model, model.base_model_prefix)
        rates = {m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)}
        rates |= {m.dropout.p for m in encoder.modules() if hasattr(m, "dropout") and hasattr(m.dropout, "p")}
        assert rates <= {0.0}, (model_type, rates)


def test_unknown_architecture_is_a_clear_error(tiny_run, tmp_path):
    gpt2 = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, pad_token_id=0)
    with pytest.raises(ValueError, match=r"model_type 'gpt2' is not in the adapter target table.*adapter.targets"):
        build_model(tiny_model(tiny_run, tmp_path, gpt2), 2)
