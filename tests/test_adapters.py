"""Behavioural tests of adapters/ on a tiny RoBERTa (hidden 32, 2 layers)."""
import inspect

import pytest
import torch
from torch import nn
from transformers import (BertConfig, BertForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification)

import adapters

CFG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
           intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
           attention_probs_dropout_prob=0.0)
torch.manual_seed(0)
_BASE = RobertaForSequenceClassification(RobertaConfig(**CFG, num_labels=2)).state_dict()
X = torch.randint(3, 100, (4, 12), generator=torch.Generator().manual_seed(1))
Y = torch.tensor([0, 1, 1, 0])

# (method, options) cases; every method and the main option values
CASES = [("lora", {}), ("symlora", {}), ("symlora", {"learn_lambda": False}),
         ("symlora", {"q_init": "orthogonal"}), ("delora", {}), ("delora", {"sigma": "diagonal"}),
         ("b_only", {}), ("b_only", {"frozen_init": "kaiming"}), ("a_only", {}),
         ("a_only", {"frozen_init": "gaussian"}), ("head_only", {}), ("bitfit", {}), ("full", {})]
IDS = [m + "".join(f"-{v}" for v in o.values()) for m, o in CASES]
EXPORTABLE = [c for c in CASES if c[0] in ("lora", "symlora", "delora", "b_only", "a_only")]


def base_model(num_labels=2):
    m = RobertaForSequenceClassification(RobertaConfig(**CFG, num_labels=num_labels))
    if num_labels == 2:
        m.load_state_dict(_BASE)
    else:
        m.load_state_dict({k: v for k, v in _BASE.items() if not k.startswith("classifier.out")},
                          strict=False)
    return m.eval()


def injected(method, seed=0, **kw):
    m = base_model()
    adapters.inject(m, method, rank=4, seed=seed, **kw)
    return m


def logits(m, x=X):
    with torch.no_grad():
        return m(input_ids=x).logits


@torch.no_grad()
def perturb(m, gen_seed=0):
    """Make every trainable tensor non-trivial (dW != 0, lambda != 1)."""
    g = torch.Generator().manual_seed(gen_seed)
    for n, p in m.named_parameters():
        if p.requires_grad:
            if n.endswith(".lam"):
                p.fill_(0.7)
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)


def snapshot(m):
    return {**{n: p.detach().clone() for n, p in m.named_parameters()},
            **{n: b.detach().clone() for n, b in m.named_buffers()}}


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, kw", CASES, ids=IDS)
def test_step0_equals_base(method, kw):
    ref = logits(base_model())
    m = injected(method, **kw)
    torch.testing.assert_close(logits(m), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method, kw", CASES, ids=IDS)
def test_only_claimed_params_change(method, kw):
    m = injected(method, **kw)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    head = {n for n in trainable if n.startswith("classifier.")}
    assert head == {n for n, _ in m.named_parameters() if n.startswith("classifier.")}
    own = {f"{ln}.{n}" for ln, l in adapters.adapter_layers(m) for n, p in l.named_parameters()
           if p.requires_grad}
    if method in ("lora", "symlora", "delora", "b_only", "a_only"):
        assert trainable == own | head and own
    perturb(m)  # zero-init factors non-zero, so every adapter tensor gets a gradient
    before = snapshot(m)
    m.train()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2, eps=1e-30)
    nn.functional.cross_entropy(m(input_ids=X).logits, Y).backward()
    opt.step()
    after = snapshot(m)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed <= trainable, f"frozen tensors changed: {changed - trainable}"
    assert own | head <= changed, f"trainable but unchanged: {(own | head) - changed}"
    if method in ("bitfit", "full"):  # a few (e.g. key biases) get ~zero gradient by design
        assert len(changed) >= 0.8 * len(trainable)


@pytest.mark.parametrize("method, kw", CASES, ids=IDS)
def test_merge_equals_adapted_and_round_trip(method, kw):
    m = injected(method, **kw)
    perturb(m)
    out = logits(m)
    merged = adapters.merge(m)
    assert not list(adapters.adapter_layers(merged))
    for name in getattr(m, "_adapters_meta")["modules"]:
        assert type(merged.get_submodule(name)) is nn.Linear
    torch.testing.assert_close(logits(merged), out, rtol=1e-5, atol=1e-5)
    # the original keeps its adapter layers and outputs
    assert len(list(adapters.adapter_layers(m))) == len(m._adapters_meta["modules"])
    torch.testing.assert_close(logits(m), out, rtol=0, atol=0)
    if method == "symlora" and kw.get("learn_lambda", True):
        layer = next(l for _, l in adapters.adapter_layers(m))
        assert float(layer.lam.detach()) == pytest.approx(0.7)
        assert not torch.allclose(merged.get_submodule(layer.name).weight, layer.base.weight)


@pytest.mark.parametrize("method, kw", CASES, ids=IDS)
def test_save_load_trainable(method, kw, tmp_path):
    m = injected(method, **kw)
    perturb(m)
    adapters.save_trainable(m, tmp_path / "t.safetensors")
    fresh = injected(method, seed=123, **kw)  # other seed: frozen factors come from the file
    assert method in ("head_only", "bitfit", "full", "lora", "symlora") or \
        not torch.allclose(logits(fresh), logits(m))
    adapters.load_trainable(fresh, tmp_path / "t.safetensors")
    torch.testing.assert_close(logits(fresh), logits(m), rtol=0, atol=0)


def test_load_trainable_strict(tmp_path):
    m = injected("lora")
    adapters.save_trainable(m, tmp_path / "t.safetensors")
    other = injected("lora", targets=("query", "key"))
    with pytest.raises(KeyError, match=r"missing keys .*key\.lora_A.*unexpected keys .*value"):
        adapters.load_trainable(other, tmp_path / "t.safetensors")


def test_adapter_state_for_new_task():
    src = injected("delora")
    perturb(src)
    state = adapters.adapter_state_dict(src)
    assert state and not any(k.startswith("classifier") for k in state)
    assert {k.rsplit(".", 1)[1] for k in state} == {"delora_A", "delora_B", "delora_Sigma"}
    dst = base_model(num_labels=3)
    adapters.inject(dst, "delora", rank=4, seed=99)
    adapters.load_adapter_state(dst, state)
    for k, v in adapters.adapter_state_dict(dst).items():
        assert torch.equal(v, state[k])
    bad = dict(state)
    bad["nope.lora_A"] = bad.pop(next(iter(bad)))
    with pytest.raises(KeyError, match="nope.lora_A"):
        adapters.load_adapter_state(dst, bad)


def test_symlora_delta_symmetric_low_rank_and_update():
    m = injected("symlora")
    perturb(m)
    for _, layer in adapters.adapter_layers(m):
        d = layer.delta_weight()
        torch.testing.assert_close(d, d.T)
        assert torch.linalg.matrix_rank(d) <= layer.rank
        x = torch.randn(5, layer.d_in)
        torch.testing.assert_close(layer.update(x), x @ d.T, rtol=1e-5, atol=1e-6)


def test_lora_dropout_on_adapter_input_only():
    m = injected("lora", dropout=0.5)
    perturb(m)
    layer = next(l for _, l in adapters.adapter_layers(m))
    x = torch.randn(6, layer.d_in)
    layer.train()
    torch.manual_seed(0)
    h = layer(x)
    assert not torch.allclose(h, layer.base(x) + x @ layer.delta_weight().T)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.base(x) + x @ layer.delta_weight().T)


# ------------------------------------------------------------------------------ seeds, inits
@pytest.mark.parametrize("method, names", [("b_only", ["lora_A"]), ("a_only", ["lora_B"]),
                                           ("delora", ["delora_A", "delora_B"])])
def test_frozen_factors_seeded(method, names):
    def frozen(seed):
        m = injected(method, seed=seed)
        return {f"{ln}.{n}": getattr(l, n) for ln, l in adapters.adapter_layers(m) for n in names}
    a, b, c = frozen(0), frozen(0), frozen(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.allclose(a[k], c[k]) for k in a)
    vals = list(a.values())  # per-module streams: layers differ from each other
    assert not torch.allclose(vals[0], vals[len(names)])


def test_orthogonal_init():
    for _, l in adapters.adapter_layers(injected("b_only")):
        torch.testing.assert_close(l.lora_A @ l.lora_A.T, torch.eye(4), atol=1e-5, rtol=0)
    for _, l in adapters.adapter_layers(injected("a_only")):
        torch.testing.assert_close(l.lora_B.T @ l.lora_B, torch.eye(4), atol=1e-5, rtol=0)
    for _, l in adapters.adapter_layers(injected("symlora", q_init="orthogonal")):
        torch.testing.assert_close(l.Q.T @ l.Q, torch.eye(4), atol=1e-5, rtol=0)


# -------------------------------------------------------------------------------------- errors
def test_errors():
    m = base_model()
    with pytest.raises(ValueError, match=r"roberta\.encoder\.layer\.0\.intermediate\.dense.*"
                                         r"d_out=64, d_in=32"):
        adapters.inject(m, "symlora", targets=("dense",))
    assert not list(adapters.adapter_layers(m))  # untouched
    for rank in (0, -1, 33):
        with pytest.raises(ValueError, match=r"rank .*attention\.self\.query.*d_out=32, d_in=32"):
            adapters.inject(base_model(), "lora", rank=rank)
    with pytest.raises(ValueError, match="known methods: lora, symlora, delora, b_only"):
        adapters.inject(base_model(), "nosuch")
    with pytest.raises(ValueError, match="built through PEFT's own classes"):
        adapters.inject(base_model(), "dora")
    with pytest.raises(ValueError, match="unknown option.*sigma"):
        adapters.inject(base_model(), "lora", sigma="full")
    with pytest.raises(ValueError, match="unknown option.*frozen_init"):
        adapters.inject(base_model(), "bitfit", frozen_init="kaiming")
    with pytest.raises(ValueError, match="q_init"):
        adapters.inject(base_model(), "symlora", q_init="zeros")
    with pytest.raises(ValueError, match="no nn.Linear module matches"):
        adapters.inject(base_model(), "lora", targets=("nothing",))
    m = injected("lora")
    with pytest.raises(RuntimeError, match="already"):
        adapters.inject(m, "lora")


def test_targets_suffix_and_head_excluded():
    m = base_model()
    names = adapters.inject(m, "lora", rank=4, targets=["key", "dense"])
    assert all(n.endswith((".key", ".dense")) for n in names)
    assert not any(n.startswith("classifier") for n in names)
    assert len(names) == 2 * 4  # key, attention.output.dense, intermediate.dense, output.dense


def test_bert_head_is_classifier_not_pooler():
    m = BertForSequenceClassification(BertConfig(**CFG, num_labels=3))
    names = adapters.inject(m, "lora", rank=4)
    assert len(names) == 4
    assert adapters.find_head(m)[0] == "classifier"
    assert not any(p.requires_grad for p in m.bert.pooler.parameters())
    assert adapters.count_trainable(m) == {"adapter": 4 * 4 * 64, "head": 32 * 3 + 3,
                                           "with_head": 4 * 4 * 64 + 99}


# ------------------------------------------------------------------------------ lora_of_lora
@pytest.mark.parametrize("source", ["model", "state"])
def test_lora_of_lora(source):
    lora = base_model()
    adapters.inject(lora, "lora", rank=4, alpha=8)  # scaling 2
    with torch.no_grad():
        for _, l in adapters.adapter_layers(lora):
            l.lora_B.normal_(0, 0.3)
    ref = logits(lora)
    m = base_model()
    src = lora if source == "model" else adapters.adapter_state_dict(lora)
    shape = dict(rank=4, alpha=8, targets=("query", "value"), dropout=0.0, seed=1)
    names = adapters.lora_of_lora(m, src, **shape)
    assert names == lora._adapters_meta["modules"]
    torch.testing.assert_close(logits(m), ref, rtol=1e-6, atol=1e-6)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.delora_Sigma" for n in names} | {
        n for n, _ in m.named_parameters() if n.startswith("classifier.")}
    assert adapters.count_trainable(m)["adapter"] == len(names) * 16
    for _, l in adapters.adapter_layers(m):
        assert torch.equal(l.delora_Sigma, torch.eye(4))
    with pytest.raises(ValueError, match="rank=8"):
        adapters.lora_of_lora(base_model(), lora, rank=8)
    with pytest.raises(ValueError, match="do not match targets"):
        adapters.lora_of_lora(base_model(), lora, targets=("key",))


# ------------------------------------------------------------------------------ layer norms
def test_layer_norms():
    m = injected("symlora")
    perturb(m)
    rows = adapters.layer_norms(m)
    assert [(r["layer"], r["target"]) for r in rows] == [(0, "query"), (0, "value"),
                                                         (1, "query"), (1, "value")]
    for r, (_, l) in zip(rows, adapters.adapter_layers(m)):
        assert r["module"] == l.name and r["lambda"] == pytest.approx(0.7)
        assert r["base_norm"] == pytest.approx(0.7 * float(l.base.weight.norm()), rel=1e-5)
        assert r["delta_norm"] == pytest.approx(float(l.delta_weight().detach().norm()), rel=1e-5)
    assert all(r["lambda"] == 1.0 for r in adapters.layer_norms(injected("lora")))


def test_method_files_have_equation_docstrings():
    from adapters import delora, lora, one_sided, symlora
    assert "W0 x + b + s · B A x" in lora.__doc__
    assert "λ · W0 x + b + s · Q diag(Λ) Qᵀ x" in symlora.__doc__
    assert "B Σ A x" in delora.__doc__ and "NOT PEFT's DeLoRA" in delora.__doc__
    assert "Bini" in delora.DeLoRALayer.__doc__
    assert "B A x" in one_sided.__doc__
    for mod in (lora, symlora, delora, one_sided):
        assert len(inspect.getsource(mod).splitlines()) <= 70


@pytest.mark.parametrize("method", ["lora", "symlora", "delora", "b_only", "a_only"])
def test_factors_multiply_to_the_delta_weight(method):
    """factors() = (B, A) with B A = s·ΔW, λ or not: packs apply updates through it."""
    from transformers import RobertaConfig, RobertaForSequenceClassification
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64))
    adapters.inject(model, method, rank=4, alpha=8)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    for _, layer in adapters.adapter_layers(model):
        b, a = layer.factors()
        torch.testing.assert_close(b @ a, layer.delta_weight())
        x = torch.randn(3, layer.d_in)
        torch.testing.assert_close(x @ a.T @ b.T, layer.update(x))
