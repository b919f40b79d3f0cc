"""Protocol options: gradient accumulation (the LoRA scripts' 8-process batch on one device), Adam's
epsilon, precision, DeLoRA's frozen-factor init, and the paper presets' configurations."""
import math

import pytest
import torch
from safetensors.torch import load_file

import adapters
from training.config import compose
from training.loop import optimizer_steps
from training.run import run
from rundir import run_dir


def test_accumulation_2_of_batch_4_is_one_update_of_batch_8(tiny_run, tmp_path):
    """Dropout off: two accumulated batches of 4 give the update of one batch of 8 (RTE's 400
    examples split evenly), and metrics.json records the batch per optimiser step."""
    common = ["task=rte", "adapter=lora", "init_from=null", "model.dropout=0", "epochs=1"]
    one_cfg, one_ov = tiny_run(*common, "batch_size=8", f"results_dir={tmp_path / 'one'}")
    acc_cfg, acc_ov = tiny_run(*common, "batch_size=4", "grad_accumulation=2", f"results_dir={tmp_path / 'acc'}")
    one, acc = run(one_cfg, one_ov), run(acc_cfg, acc_ov)
    assert one["status"] == acc["status"] == "done", (one["reason"], acc["reason"])
    assert acc["hyperparameters"]["effective_batch"] == one["hyperparameters"]["effective_batch"] == 8
    assert (acc["hyperparameters"]["batch_size"], acc["hyperparameters"]["grad_accumulation"]) == (4, 2)
    assert acc["precision"] == "fp32"  # CPU
    w_one = load_file(run_dir(one_cfg) / "adapter.safetensors")
    w_acc = load_file(run_dir(acc_cfg) / "adapter.safetensors")
    assert w_one.keys() == w_acc.keys()
    moved = False
    for key in w_one:
        torch.testing.assert_close(w_acc[key], w_one[key], rtol=1e-4, atol=1e-5)
        moved |= bool(w_one[key].abs().sum() > 0)
    assert moved
    assert acc["best"]["accuracy"] == pytest.approx(one["best"]["accuracy"])


def test_optimizer_steps_count_a_short_last_group():
    assert optimizer_steps(100, 1) == 100
    assert optimizer_steps(100, 8) == 13  # 12 full groups and one of 4
    assert optimizer_steps(96, 8) == 12


def test_bad_grad_accumulation_and_precision_are_named(tiny_run, tmp_path):
    cfg, ov = tiny_run("task=rte", "init_from=null", "grad_accumulation=0")
    with pytest.raises(ValueError, match="grad_accumulation=0: expected an integer"):
        run(cfg, ov)
    cfg, ov = tiny_run("task=rte", "init_from=null", "precision=fp16")
    with pytest.raises(ValueError, match="precision='fp16'"):
        run(cfg, ov)


def test_adam_eps_is_the_hugging_face_default():
    assert compose(["task=rte"]).optim.eps == 1e-8


def test_lora_paper_presets_name_both_readings_of_the_batch():
    """The table's batch (one process) and the scripts' 8 processes × the table's batch."""
    table = compose(["experiment=lora_paper", "task=mnli"])
    scripts = compose(["experiment=lora_paper_scripts", "task=mnli"])
    assert (table.batch_size, table.grad_accumulation) == (16, 1)
    assert (scripts.batch_size, scripts.grad_accumulation) == (16, 8)  # 128 per step, as 8 GPUs × 16
    assert (table.experiment, scripts.experiment) == ("lora_paper", "lora_paper_scripts")  # two protocols
    rte = compose(["experiment=lora_paper_scripts", "task=rte"])
    assert rte.batch_size * rte.grad_accumulation == 256
    for cfg in (table, scripts):
        assert (cfg.adapter.rank, cfg.adapter.alpha, cfg.max_seq_len) == (8, 16, 512)
        assert cfg.precision == "fp32" and cfg.optim.eps == 1e-8


def test_asymmetry_preset_is_roberta_large_from_the_pretrained_model():
    for task in ("mnli", "rte", "mrpc", "stsb"):
        cfg = compose(["experiment=asymmetry", f"task={task}"])
        assert cfg.model.name_or_path == "roberta-large" and cfg.init_from is None


def test_delora_frozen_factors_default_to_gaussian():
    base = torch.nn.Linear(512, 512)
    layer = adapters.DeLoRALayer(base, 8, generator=torch.Generator().manual_seed(0))
    a = layer.delora_A
    # N(0, 1/d_in): variance 1/512, and values beyond the uniform's bound 1/sqrt(512) occur
    assert a.var().item() == pytest.approx(1 / 512, rel=0.1)
    assert a.abs().max().item() > 1 / math.sqrt(512)
    uniform = adapters.DeLoRALayer(base, 8, generator=torch.Generator().manual_seed(0), init="kaiming")
    assert uniform.delora_A.abs().max().item() <= 1 / math.sqrt(512)
    model = _tiny()
    adapters.inject(model, "delora", rank=4)
    model_layers = adapters.adapter_layers(model)
    assert model_layers and all(layer.delora_A.var().item() == pytest.approx(1 / layer.d_in, rel=0.3) for _, layer in model_layers)


def _tiny():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    config = RobertaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=40)
    return RobertaForSequenceClassification(config)
