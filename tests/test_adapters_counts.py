"""Exact trainable-parameter counts on the roberta-base shape (RobertaConfig() defaults, 2 labels).

The 125M random model is built once (module fixture); each case injects, counts, then restores the
original nn.Linear modules, so no copy of the big model is needed.
"""
import pytest
import torch
from transformers import RobertaConfig, RobertaForSequenceClassification

import adapters
from adapters.inject import META_ATTR, set_submodule

H, L, FF = 768, 12, 3072
HEAD = (H * H + H) + (H * 2 + 2)  # classifier.dense + classifier.out_proj = 592,130


@pytest.fixture(scope="module")
def big():
    torch.manual_seed(0)
    return RobertaForSequenceClassification(RobertaConfig(num_labels=2))


def counts(model, method, **kw):
    try:
        adapters.inject(model, method, **kw)
        return adapters.count_trainable(model)
    finally:
        for name, layer in list(adapters.adapter_layers(model)):
            set_submodule(model, name, layer.base)
        model.__dict__.pop(META_ATTR, None)
        model.requires_grad_(True)


@pytest.mark.parametrize("method, kw, expected", [
    ("lora", {}, 294_912),
    ("symlora", {}, 147_672),
    ("symlora", {"learn_lambda": False}, 147_648),
    ("delora", {}, 1_536),
    ("delora", {"rank": 16}, 6_144),
    ("delora", {"rank": 32}, 24_576),
    ("delora", {"rank": 64}, 98_304),
    ("delora", {"sigma": "diagonal"}, 24 * 8),
    ("b_only", {}, 147_456),
    ("a_only", {}, 147_456),
    ("head_only", {}, 0),
    # BitFit (Zaken et al.): all bias terms incl. LayerNorm biases, per layer
    # q,k,v + attention.output.dense + LN + intermediate + output.dense + LN; plus embeddings LN.
    ("bitfit", {}, L * (3 * H + H + H + FF + H + H) + H),  # 102,144
    # full: embeddings (RobertaConfig() defaults: vocab 50265, 512 positions, 2 token types, LN)
    # + 12 layers (4 attention linears, 2 LNs, FFN) -- the head is counted apart.
    ("full", {}, (50265 + 512 + 2) * H + 2 * H
     + L * (4 * (H * H + H) + 4 * H + (H * FF + FF) + (FF * H + H))),
])
def test_counts(big, method, kw, expected):
    c = counts(big, method, **kw)
    assert c == {"adapter": expected, "head": HEAD, "with_head": expected + HEAD}


def test_head_and_bitfit_literals(big):
    assert HEAD == 592_130
    assert counts(big, "bitfit")["adapter"] == 102_144
    assert counts(big, "full")["with_head"] == sum(p.numel() for p in big.parameters())
