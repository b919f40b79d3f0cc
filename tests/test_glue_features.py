"""Tokenisation (cache, pairs, truncation), the padding collator, the tiny offline assets."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch

import glue.features as features
from glue.features import make_collator, tokenize_glue
from glue.loading import load_glue

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "assets" / "tiny-roberta"


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY))


def test_tiny_assets_load_offline(tok, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = AutoConfig.from_pretrained(str(TINY))
    assert cfg.model_type == "roberta"
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
            cfg.intermediate_size) == (64, 2, 4, 128)
    assert (cfg.max_position_embeddings, cfg.type_vocab_size) == (514, 1)
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (1, 0, 2)
    assert cfg.vocab_size == len(tok)
    assert [tok.convert_tokens_to_ids(t) for t in ["<s>", "<pad>", "</s>", "<unk>"]] == [0, 1, 2, 3]
    assert tok.mask_token == "<mask>" and tok.pad_token_id == 1
    assert tok.model_max_length == 512
    assert not list(TINY.glob("*.safetensors")) and not list(TINY.glob("*.bin"))
    ids = tok("the cat .", "a dog .")["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks[0] == "<s>" and toks[-1] == "</s>"
    sep = [i for i, t in enumerate(toks) if t == "</s>"]
    assert len(sep) == 3 and sep[1] == sep[0] + 1  # <s> A </s></s> B </s>
    cfg.num_labels = 2
    model = AutoModelForSequenceClassification.from_config(cfg)
    out = model(input_ids=torch.tensor([ids]))
    assert out.logits.shape == (1, 2)


def test_pairs_tokenised_as_pairs(tok, tmp_path):
    dd = load_glue("rte", "sample")
    td = tokenize_glue(dd, "rte", tok, max_seq_len=128, cache_dir=tmp_path)
    assert list(td) == list(dd)
    for split in td:
        assert set(td[split].column_names) == {"input_ids", "attention_mask", "labels", "idx"}
    row, src = td["train"][5], dd["train"][5]
    assert row["input_ids"] == tok(src["sentence1"], src["sentence2"])["input_ids"]
    assert row["labels"] == src["label"] and row["idx"] == src["idx"]
    assert td["test"]["labels"][:3] == [-1, -1, -1]
    single = tokenize_glue(load_glue("sst2", "sample"), "sst2", tok, 128)
    s = load_glue("sst2", "sample")["validation"][0]["sentence"]
    assert single["validation"][0]["input_ids"] == tok(s)["input_ids"]


def test_stsb_labels_float(tok):
    td = tokenize_glue(load_glue("stsb", "sample", splits=["validation"]), "stsb", tok, 64)
    assert td["validation"].features["labels"].dtype == "float32"
    batch = make_collator(tok)([td["validation"][i] for i in range(4)])
    assert batch["labels"].dtype == torch.float32


def test_truncation(tok):
    long = " ".join(["wonderful movie"] * 100)
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict(
            {"sentence1": [long, "short"], "sentence2": ["tiny", long], "label": [0, 1],
             "idx": [0, 1]}),
    })
    for max_len in (16, 32):
        td = tokenize_glue(dd, "rte", tok, max_seq_len=max_len)
        lengths = [len(x) for x in td["train"]["input_ids"]]
        assert lengths == [max_len, max_len]
        ids = td["train"][0]["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # still a pair, both ends kept
    short = tokenize_glue(dd, "rte", tok, max_seq_len=512)
    assert max(len(x) for x in short["train"]["input_ids"]) > 200


def test_cache_reused(tok, tmp_path, monkeypatch):
    dd = load_glue("mrpc", "sample")
    calls = []
    real = features._tokenize_split

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(features, "_tokenize_split", counting)
    first = tokenize_glue(dd, "mrpc", tok, max_seq_len=128, cache_dir=tmp_path)
    assert len(calls) == 3  # train, validation, test
    cached = list((tmp_path / "tokenized").iterdir())
    assert len(cached) == 1 and (cached[0] / "COMPLETE").is_file()

    # a second call (fresh load of the same data) reads the cache: no tokenisation at all
    def fail(*a, **k):
        raise AssertionError("re-tokenised although cached")

    monkeypatch.setattr(features, "_tokenize_split", fail)
    second = tokenize_glue(load_glue("mrpc", "sample"), "mrpc", tok, 128, cache_dir=tmp_path)
    for split in first:
        assert second[split]["input_ids"] == first[split]["input_ids"]
        assert second[split]["labels"] == first[split]["labels"]
    # another max_seq_len or other data -> another cache entry
    monkeypatch.setattr(features, "_tokenize_split", counting)
    calls.clear()
    tokenize_glue(dd, "mrpc", tok, max_seq_len=64, cache_dir=tmp_path)
    tokenize_glue(datasets.DatasetDict({"train": dd["train"].select(range(10))}), "mrpc", tok,
                  128, cache_dir=tmp_path)
    assert len(calls) == 4
    assert len(list((tmp_path / "tokenized").iterdir())) == 3


def test_dynamic_padding(tok):
    feats = [{"input_ids": [0, 5, 6, 2], "attention_mask": [1] * 4, "labels": 1, "idx": 0},
             {"input_ids": [0, 5, 6, 7, 8, 9, 10, 2], "attention_mask": [1] * 8, "labels": 0,
              "idx": 1},
             {"input_ids": [0, 2], "attention_mask": [1, 1], "labels": 1, "idx": 2}]
    batch = make_collator(tok)(feats)
    assert batch["input_ids"].shape == (3, 8)
    assert batch["input_ids"][2].tolist() == [0, 2] + [1] * 6  # <pad> = 1
    assert batch["attention_mask"][0].tolist() == [1] * 4 + [0] * 4
    assert batch["labels"].tolist() == [1, 0, 1] and batch["labels"].dtype == torch.int64
    assert batch["idx"].tolist() == [0, 1, 2]
    b16 = make_collator(tok, pad_to_multiple_of=16)(feats[:1])
    assert b16["input_ids"].shape == (1, 16)
    b8 = make_collator(tok, pad_to_multiple_of=8)([feats[0], feats[2]])
    assert b8["input_ids"].shape == (2, 8)
    assert make_collator(tok)([feats[0], feats[2]])["input_ids"].shape == (2, 4)


def test_tokenizer_config_names_roberta():
    cfg = json.loads((TINY / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] == "RobertaTokenizer" and cfg["model_max_length"] == 512
