"""`python -m training.parity` on CPU for every architecture of the README's table (small random
configs, a token-type tokenizer for the BERT family) and every method on RoBERTa, where both engines
run. Two steps, hidden size 32, one layer: the whole module stays within about a minute and a half."""
import json

import pytest
from transformers import (AlbertConfig, BertConfig, BertTokenizerFast, DebertaV2Config, DistilBertConfig,
                          ElectraConfig, GemmaConfig, LlamaConfig, MistralConfig, MPNetConfig, Qwen2Config,
                          RobertaConfig, XLMRobertaConfig, XmodConfig)
from transformers import AutoTokenizer

from training import parity

SMALL = dict(vocab_size=800, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, hidden_size=32)
DECODER = dict(SMALL, num_key_value_heads=2, eos_token_id=2, pad_token_id=1, head_dim=16)
# (config, tokenizer kind: "bert" returns token_type_ids, "roberta" does not)
ARCHITECTURES = {
    "roberta": (RobertaConfig(**SMALL, type_vocab_size=1), "roberta"),  # as roberta-base
    "roberta-pad-0": (RobertaConfig(**SMALL, type_vocab_size=1, pad_token_id=0), "roberta"),
    "xlm-roberta": (XLMRobertaConfig(**SMALL), "roberta"),
    "xmod": (XmodConfig(**SMALL, languages=["en_XX"], default_language="en_XX"), "roberta"),
    "bert": (BertConfig(**SMALL), "bert"),
    "electra": (ElectraConfig(**SMALL, embedding_size=16), "bert"),
    "albert": (AlbertConfig(**SMALL, embedding_size=16), "bert"),
    "distilbert": (DistilBertConfig(vocab_size=800, dim=32, n_layers=1, n_heads=2, hidden_dim=64), "bert"),
    "deberta-v3": (DebertaV2Config(**SMALL, relative_attention=True, pos_att_type=["p2c", "c2p"],
                                   position_buckets=16, max_relative_positions=64, position_biased_input=False,
                                   share_att_key=True, norm_rel_ebd="layer_norm"), "bert"),
    "mpnet": (MPNetConfig(**SMALL), "bert"),
    "llama": (LlamaConfig(**DECODER), "roberta"),
    "mistral": (MistralConfig(**DECODER), "roberta"),
    "qwen2": (Qwen2Config(**DECODER), "roberta"),
    "gemma": (GemmaConfig(**DECODER), "roberta"),
}
METHODS = ("lora", "symlora", "delora", "b_only", "a_only", "head_only", "bitfit", "full")
TARGETS = {"distilbert": "[q_lin,v_lin]", "xmod": "[query,value]"}


def bert_tokenizer(folder):
    """A character-level WordPiece tokenizer: a few dozen entries, token types for sentence pairs."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,'!?-")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A folder per architecture: its random config and a tokenizer (made on first use)."""
    root = tmp_path_factory.mktemp("parity")
    roberta = AutoTokenizer.from_pretrained("assets/tiny-roberta")

    def make(name):
        folder = root / name
        if not folder.exists():
            config, kind = ARCHITECTURES[name]
            folder.mkdir()
            config.save_pretrained(folder)
            if kind == "bert":
                bert_tokenizer(folder)
            else:
                roberta.save_pretrained(folder)
        return folder
    return make, root


def run_parity(models, name, *overrides, steps=2, pack=2):
    make, root = models
    folder = make(name)
    targets = [f"adapter.targets={TARGETS[name]}"] if name in TARGETS else []
    args = ["model=tiny", f"model.name_or_path={folder}", "model.random_init=true", "data=sample", "task=rte",
            "init_from=null", "device=cpu", "max_seq_len=24", "batch_size=4", f"results_dir={root / 'results'}",
            *targets, *overrides]
    rows = parity.check(args, steps=steps, pack=pack)
    print(parity.table(rows))
    return rows


@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if n != "roberta"])
def test_parity_passes_for_every_architecture(models, name):
    rows = run_parity(models, name)
    assert all(row.get("ok", True) for row in rows), parity.table(rows)
    assert rows[0]["check"].startswith("(a)") and "not applicable" in rows[0]["note"]  # only RoBERTa is fused
    assert rows[-1]["ok"] and rows[-1]["logits"] <= parity.TOLERANCES["fp32"]


@pytest.mark.parametrize("method", METHODS)
def test_parity_passes_for_every_method_on_roberta(models, method):
    rows = run_parity(models, "roberta", f"adapter={method}")
    assert all(row.get("ok", True) for row in rows), parity.table(rows)
    fused = method not in ("bitfit", "full")
    assert ("note" not in rows[0]) == fused  # both engines ran where the fused engine is allowed


def test_parity_fails_when_the_engines_differ(models, monkeypatch):
    """A fused engine that computed something else is caught (here: its head's output shifted)."""
    from training import loop
    real = loop.fused_forward
    monkeypatch.setattr(parity, "fused_forward", lambda *a, **k: real(*a, **k) + 1e-3)
    rows = run_parity(models, "roberta")
    assert not rows[0]["ok"] and rows[0]["logits"] == pytest.approx(1e-3, rel=1e-3)


def test_command_line_prints_the_table_and_sets_the_exit_status(models, capsys, monkeypatch):
    make, root = models
    code = parity.main(["--steps", "1", "--pack", "2", "model=tiny", "data=sample", "task=sst2", "device=cpu",
                        "max_seq_len=24", "batch_size=4", f"results_dir={root / 'results'}"])
    out = capsys.readouterr().out
    assert code == 0 and "(a) reference vs fused" in out and "(b) pack of 2" in out and "OVER" not in out
    json.dumps(out)
