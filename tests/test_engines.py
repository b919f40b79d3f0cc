"""The two engines (training/engine.py): which one trains a run and why, the reference engine's
Transformers semantics (token types, dropout, its own heads), its seeding, its per-step hook."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import (AutoModelForSequenceClassification, BertConfig, DistilBertConfig, ElectraConfig, RobertaConfig, XmodConfig)

from glue import get_task
from rundir import run_dir
from tests.test_parity import ARCHITECTURES, bert_tokenizer, models  # noqa: F401  (the fixture)
from training import engine, parity, reference
from training.data import RunData
from training.loop import forward
from training.model import build_model, build_tokenizer
from training.run import run
from training.schema import ConfigError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def choice(tiny_run, *overrides, device=CPU, config=None):
    cfg, _ = tiny_run(*overrides)
    return engine.choose(cfg, device, config)


def test_auto_picks_fused_only_for_the_exact_list(tiny_run):
    roberta = RobertaConfig(vocab_size=800, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64, type_vocab_size=1)
    for device in (CUDA, CPU):  # the tiny RoBERTa
        assert choice(tiny_run, device=device).engine == "fused" and "on its list" in choice(tiny_run).reason
    # a pack shares one pass on CUDA and when asked for; on a CPU auto trains its runs in turn (faster there)
    assert choice(tiny_run, device=CUDA).shared and choice(tiny_run, "engine=fused").shared
    assert not choice(tiny_run, device=CPU).shared and "one after another" in choice(tiny_run).reason
    assert choice(tiny_run, "engine=reference").record() == {"engine": "reference", "engine_reason": None}
    assert choice(tiny_run, "engine=fused").record() == {"engine": "fused", "engine_reason": None}
    refused = {
        "BertForSequenceClassification": BertConfig(),
        "ElectraForSequenceClassification": ElectraConfig(),
        "XLMRobertaForSequenceClassification": ARCHITECTURES["xlm-roberta"][0],
        "XmodForSequenceClassification": XmodConfig(),
        "pad_token_id=0": RobertaConfig(**{**roberta.to_dict(), "pad_token_id": 0}),
        "position_embedding_type": RobertaConfig(**{**roberta.to_dict(),
                                                   "position_embedding_type": "relative_key"}),
        "type_vocab_size=2": RobertaConfig(**{**roberta.to_dict(), "type_vocab_size": 2}),
    }
    for why, config in refused.items():
        chosen = choice(tiny_run, device=CUDA, config=config)
        assert chosen.engine == "reference" and why in chosen.reason, (why, chosen)
        assert chosen.reason.startswith("engine=auto: reference engine: ")
        with pytest.raises(ConfigError, match=f"engine=fused: .*{why}"):
            choice(tiny_run, "engine=fused", device=CUDA, config=config)
    for method in ("bitfit", "full"):
        assert "trains the backbone" in choice(tiny_run, f"adapter={method}", device=CUDA).reason


def test_engine_fused_where_not_allowed_fails_before_anything_is_written(tiny_run, tmp_path):
    cfg, overrides = tiny_run("task=rte", "init_from=null", "engine=fused", "adapter=bitfit")
    with pytest.raises(ConfigError, match="engine=fused: adapter=bitfit"):
        run(cfg, overrides)
    assert not (tmp_path / "results").exists()


def test_a_run_records_its_engine_and_is_the_same_in_a_fresh_process(tiny_run, tmp_path):
    """Dropout on: a run after another one in the same process equals the same run in a fresh
    process (the run's seed, not what ran before, drives its dropout)."""
    common = ("task=rte", "init_from=null", "model.dropout=0.1", "adapter.dropout=0.1", "engine=reference")
    cfg, overrides = tiny_run(*common, "seed=1", f"results_dir={tmp_path / 'first'}")
    run(cfg, overrides)
    cfg, overrides = tiny_run(*common, f"results_dir={tmp_path / 'same'}")
    metrics = run(cfg, overrides)
    assert metrics["engine"] == "reference" and metrics["engine_reason"] is None
    fresh_cfg, fresh = tiny_run(*common, f"results_dir={tmp_path / 'fresh'}")
    subprocess.run([sys.executable, "train.py", *fresh], check=True, capture_output=True)
    ours, theirs = load_file(run_dir(cfg) / "adapter.safetensors"), load_file(run_dir(fresh_cfg) / "adapter.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    first = json.loads((run_dir(cfg) / "epochs.jsonl").read_text().splitlines()[0])
    again = json.loads((run_dir(fresh_cfg) / "epochs.jsonl").read_text().splitlines()[0])
    assert first["train_loss"] == again["train_loss"]


def test_token_types_reach_the_model_on_a_pair_task(tiny_run, tmp_path):
    """A BERT on RTE: the logits of our training path (its batches, training/loop.py forward) equal
    plain Transformers' on the tokenizer's own output, token_type_ids included."""
    folder = tmp_path / "bert"
    BertConfig(vocab_size=80, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64, hidden_dropout_prob=0, attention_probs_dropout_prob=0).save_pretrained(folder)
    bert_tokenizer(folder)
    cfg, _ = tiny_run("task=rte", "init_from=null", f"model.name_or_path={folder}", "model.random_init=true",
                      "adapter=full")
    tokenizer, task = build_tokenizer(cfg), get_task("rte")
    model = build_model(cfg, task.num_labels).eval()
    with torch.no_grad():  # token type embeddings that matter (a random init leaves row 1 near row 0)
        model.bert.embeddings.token_type_embeddings.weight[1] += 1.0
        model.classifier.weight.mul_(100.0)  # logits large enough to show the difference
    batch = next(iter(RunData(cfg, task, tokenizer).eval_loader("validation")))
    assert (batch["token_type_ids"] == 1).any()
    plain = AutoModelForSequenceClassification.from_config(model.config).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours = forward(model, batch, CPU, "fp32")
        theirs = plain(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
        without = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert (ours - without).abs().max() > 1e-3  # the check could fail: token types change the logits


def test_distilbert_classifier_dropout_follows_model_dropout(tiny_run, tmp_path):
    DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                     seq_classif_dropout=0.2).save_pretrained(tmp_path / "distil")
    for rate in (0.0, 0.3):
        cfg, _ = tiny_run("task=rte", "init_from=null", f"model.name_or_path={tmp_path / 'distil'}",
                          "model.random_init=true", "adapter.targets=[q_lin,v_lin]", f"model.dropout={rate}")
        model = build_model(cfg, 2)
        assert model.dropout.p == rate  # DistilBertForSequenceClassification's classifier dropout


def test_after_step_hook_is_called_with_the_optimizer_step(tiny_run, monkeypatch):
    seen = []
    real = reference.train_epoch

    def with_hook(model, member, loader, **kw):
        reference.register_after_step(model, seen.append)
        return real(model, member, loader, **kw)
    monkeypatch.setattr(reference, "train_epoch", with_hook)
    cfg, overrides = tiny_run("task=rte", "init_from=null", "grad_accumulation=2", "engine=reference")
    run(cfg, overrides)
    assert seen and seen == list(range(1, len(seen) + 1))  # one call per optimiser step, counting from 1
    assert "harness_after_step" not in build_model(cfg, 2).state_dict()


@pytest.mark.parametrize("name", ["deberta-v3", "albert", "mpnet", "xmod", "electra", "roberta-pad-0"])
def test_auto_trains_each_architecture_with_dropout_on(models, name):  # noqa: F811
    """Architectures the fused engine computed wrongly or crashed on (DeBERTa-v3's relative attention,
    ALBERT's attention dropout, MPNet's mask, Xmod's language adapters, ELECTRA's GELU head, a pad id
    of 0): engine=auto trains them with dropout on, and what it trained computes in plain
    Transformers what it computes in training's model."""
    make, root = models
    targets = ["adapter.targets=[query,value]"] if name == "xmod" else []
    cfg = parity.resolved(parity.compose([
        "model=tiny", f"model.name_or_path={make(name)}", "model.random_init=true", "data=sample", "task=rte",
        "init_from=null", "device=cpu", "max_seq_len=24", "batch_size=4", "model.dropout=0.1",
        f"results_dir={root / 'results'}", *targets]))
    assert engine.choose(cfg, CPU).engine == "reference"
    data = RunData(cfg, get_task("rte"), build_tokenizer(cfg))
    batches = parity._batches(data, cfg.seed, 2)
    logits, grads, model = parity.train_reference(cfg, batches, 2, CPU, "fp32")
    assert all(torch.isfinite(x).all() for x in logits)
    assert any(g.abs().sum() > 0 for g in grads[-1].values())
    assert parity._plain_difference(model, batches, CPU, "fp32") <= parity.TOLERANCES["fp32"]


def test_what_a_bert_pair_run_records_is_what_its_peft_export_computes(models, tmp_path):  # noqa: F811
    """A BERT pair task (token types) trained by engine=auto with dropout on: its exported PEFT adapter,
    loaded by PEFT onto the same base in plain Transformers and fed what the tokenizer returns
    (token_type_ids included), scores on validation exactly what metrics.json records."""
    import numpy as np
    import peft
    from transformers import AutoConfig

    import adapters
    from glue import compute_metrics
    from training.finished import load_run

    make, _ = models
    folder = make("bert")
    cfg, overrides = parity.compose([
        "model=tiny", f"model.name_or_path={folder}", "model.random_init=true", "data=sample", "task=rte",
        "init_from=null", "device=cpu", "max_seq_len=24", "batch_size=8", "epochs=1", "model.dropout=0.1",
        "adapter.dropout=0.1", f"results_dir={tmp_path}"]), []
    metrics = run(cfg, overrides)
    assert metrics["engine"] == "reference" and metrics["status"] == "done"
    finished = load_run(run_dir(parity.resolved(cfg)))
    exported = adapters.export_peft(finished.model, tmp_path / "export")

    torch.manual_seed(0)  # the random "pretrained" base, as training/model.py build_model makes it
    base = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder, num_labels=2))
    loaded = peft.PeftModel.from_pretrained(base, str(exported)).eval()
    data = RunData(finished.cfg, finished.task, finished.tokenizer)
    predictions, labels = [], []
    with torch.no_grad():
        for batch in data.eval_loader("validation"):
            assert "token_type_ids" in batch and batch["token_type_ids"].any()  # pairs: segment B is 1
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
            logits = loaded(**inputs).logits
            torch.testing.assert_close(logits, forward(finished.model, batch, CPU, "fp32"), atol=1e-5, rtol=1e-5)
            predictions.append(logits.argmax(-1))
            labels.append(batch["labels"])
    scores = compute_metrics(finished.task, torch.cat(predictions).numpy(), torch.cat(labels).numpy())
    assert np.isclose(scores["accuracy"], metrics["best"]["accuracy"])


def test_token_types_reach_a_peft_wrapped_model():
    """PEFT's sequence-classification forward names no token_type_ids and hands them on in **kwargs:
    the batch's token types still go in (and DistilBERT, which takes none, still gets none)."""
    import peft

    from training.loop import model_inputs

    batch = dict.fromkeys(("input_ids", "attention_mask", "token_type_ids", "labels"))
    bert = AutoModelForSequenceClassification.from_config(ARCHITECTURES["bert"][0])
    wrapped = peft.get_peft_model(bert, peft.LoraConfig(r=2, target_modules=["query"], task_type="SEQ_CLS"))
    assert model_inputs(wrapped, batch) == ["input_ids", "attention_mask", "token_type_ids"]
    distil = AutoModelForSequenceClassification.from_config(ARCHITECTURES["distilbert"][0])
    assert model_inputs(distil, batch) == ["input_ids", "attention_mask"]
