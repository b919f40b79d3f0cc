"""PEFT methods as harness adapters (adapters/peft_method.py), checked against PEFT itself on the tiny
RoBERTa: trainable counts, step-0 logits, PiSSA's residual, AdaLoRA's budget, export, config errors."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from adapters import count_trainable, export_merged, export_peft, peft_method
from training.config import compose
from training.model import build_model
from training.pack_rules import check_packable
from training.schema import ConfigError, validate
from tests.conftest import needs_pdflatex

peft = pytest.importorskip("peft")

READY = ["peft", "dora", "pissa", "vera", "adalora", "ia3", "loha", "lokr", "oft"]
TINY = ["model=tiny", "model.dropout=0", "task=rte", "data=sample", "device=cpu"]
X = torch.randint(3, 700, (3, 10), generator=torch.Generator().manual_seed(1))


def config(method, *overrides):
    extra = ["adapter.rank=16"] if method == "vera" else []  # VeRA's paper rank 1024 is not for hidden 64
    return compose([*TINY, f"adapter={method}", *extra, *overrides])


def built(method, *overrides, seed=0, total_steps=20):
    return build_model(config(method, *overrides, f"seed={seed}"), 2, total_steps=total_steps).eval()


def base(seed=0):
    """The same backbone and seeded head, without an adapter."""
    return build_model(compose([*TINY, "adapter=head_only", f"seed={seed}"]), 2).eval()


def logits(model, x=X):
    with torch.no_grad():
        return model(input_ids=x, attention_mask=torch.ones_like(x)).logits


@torch.no_grad()
def perturb(model, seed=0):
    """Move every trainable tensor, so that the adapter changes the logits."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.add_(torch.randn(p.shape, generator=g) * 0.1)


@pytest.mark.parametrize("method", READY)
def test_ready_made_config_is_valid_and_counts_are_peft_s(method):
    validate(config(method))
    model = built(method)
    counts = count_trainable(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert counts["with_head"] == model.get_nb_trainable_parameters()[0] == trainable
    head = sum(p.numel() for p in base().classifier.parameters())
    assert counts["head"] == head and counts["adapter"] == trainable - head > 0


def test_lora_family_counts_by_hand():
    """2 layers × (query, value) of 64 → 64: LoRA r(64+64) each; DoRA adds a 64-vector magnitude."""
    assert count_trainable(built("peft"))["adapter"] == 4 * 8 * 128
    assert count_trainable(built("dora"))["adapter"] == 4 * (8 * 128 + 64)
    # (IA)³ on PEFT's RoBERTa default (key, value, output.dense): the suffix output.dense is both the
    # attention output (scaled at its output, 64) and the feed-forward output (scaled at its input, 128)
    assert count_trainable(built("ia3"))["adapter"] == 2 * (64 + 64 + 64 + 128)


@pytest.mark.parametrize("method", READY)
def test_step_zero_is_the_base_model(method):
    """Every ready-made method starts as the identity (LoRA-family B=0, DoRA's magnitude = ‖W‖, PiSSA's
    residual + adapter = W, VeRA's b=0, (IA)³'s ones, LoHa/LoKr's zero factor, OFT's identity)."""
    torch.testing.assert_close(logits(built(method)), logits(base()), rtol=1e-4, atol=1e-5)


def test_seed_drives_the_init():
    a, b, c = built("peft", seed=1), built("peft", seed=1), built("peft", seed=2)
    key = next(n for n, _ in a.named_parameters() if "lora_A" in n)
    state = lambda m: dict(m.named_parameters())[key]  # noqa: E731
    assert torch.equal(state(a), state(b)) and not torch.equal(state(a), state(c))
    assert not torch.equal(built("vera", seed=1).base_model.vera_A["default"],
                           built("vera", seed=2).base_model.vera_A["default"])


def test_pissa_residual_plus_adapter_is_the_base_weight():
    model, weights = built("pissa"), base().state_dict()
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, peft.tuners.lora.LoraLayer)]
    assert len(layers) == 4
    for name, layer in layers:
        w = layer.get_base_layer().weight + layer.get_delta_weight("default")
        original = weights[name.removeprefix("base_model.model.") + ".weight"]
        assert not torch.allclose(layer.get_base_layer().weight, original, atol=1e-3)  # the residual
        torch.testing.assert_close(w, original, rtol=1e-5, atol=1e-5)


def test_adalora_budget_schedule_prunes_ranks():
    """AdaLoRA's update_and_allocate (the loop's per-step hook) cuts the initial rank 12 per module
    to the target budget of 8 on average by the end of the run's schedule."""
    steps = 30
    model = built("adalora", "adapter.config.deltaT=2", total_steps=steps).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    labels = torch.tensor([0, 1, 1])
    for step in range(1, steps + 1):
        model(input_ids=X, attention_mask=torch.ones_like(X), labels=labels).loss.backward()
        opt.step()
        peft_method.step_hook(model, step)  # after the step, before the gradients are cleared
        opt.zero_grad()
    ranks = {n: int((p != 0).sum()) for n, p in model.named_parameters() if n.endswith("lora_E.default")}
    assert len(ranks) == 4 and sum(ranks.values()) == 4 * 8 and len(set(ranks.values())) > 1
    assert model.peft_config["default"].rank_pattern  # the final allocation PEFT saves with the adapter


def test_adalora_regulariser_is_peft_s_own_term(tmp_path):
    """What the harness adds to its loss is what PEFT adds to a loss computed from labels:
    orth_reg_weight × the mean ‖AAᵀ − I‖ / ‖BᵀB − I‖ (PEFT's AdaLoraModel.forward)."""
    import torch.nn.functional as F

    model = built("adalora").train()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)  # away from PEFT's zero init, where BᵀB − I = −I
    term = peft_method.attach_regulariser(model)
    labels = torch.tensor([0, 1, 1])
    torch.manual_seed(0)  # the same dropout masks in both forwards
    out = model(input_ids=X, attention_mask=torch.ones_like(X), labels=labels)
    peft_term = out.loss - F.cross_entropy(out.logits, labels)
    term()  # (that forward's, already counted in out.loss)
    torch.manual_seed(0)
    model(input_ids=X, attention_mask=torch.ones_like(X))
    ours = term()
    assert float(ours.detach()) > 0.1 and ours.requires_grad
    torch.testing.assert_close(ours, peft_term, rtol=1e-5, atol=1e-6)
    assert term() == 0.0  # handed over once
    model.eval()(input_ids=X)
    assert term() == 0.0 and peft_method.attach_regulariser(built("dora")) is None
    from transformers import AutoModelForSequenceClassification
    merged = AutoModelForSequenceClassification.from_pretrained(str(export_merged(model, tmp_path))).eval()
    torch.testing.assert_close(logits(merged), logits(model), rtol=1e-4, atol=1e-5)  # the copy's own forward


def test_adalora_without_a_schedule_is_an_error():
    with pytest.raises(peft_method.PeftConfigError, match="total_steps"):
        build_model(config("adalora"), 2)


@pytest.mark.parametrize("method", ["dora", "adalora", "loha", "oft", "vera", "ia3"])
def test_native_export_loads_with_auto_peft_and_gives_the_logits(method, tmp_path):
    base().save_pretrained(tmp_path / "base")  # the tiny model is random: its weights must be on disk
    model = built(method)
    perturb(model)
    ours = logits(model)
    assert not torch.allclose(ours, logits(base()), atol=1e-4)
    folder = export_peft(model, tmp_path / "adapter", base_model_name_or_path=str(tmp_path / "base"))
    loaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(str(folder)).eval()
    torch.testing.assert_close(logits(loaded), ours, rtol=1e-5, atol=1e-5)
    merged_folder = export_merged(model, tmp_path / "merged")
    from transformers import AutoModelForSequenceClassification
    merged = AutoModelForSequenceClassification.from_pretrained(str(merged_folder)).eval()
    torch.testing.assert_close(logits(merged), ours, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits(model), ours)  # merging worked on a copy


def test_init_from_loads_the_adapter_not_the_head():
    earlier = built("dora", seed=0)
    perturb(earlier)
    state = {n: p.detach().clone() for n, p in earlier.named_parameters() if p.requires_grad}
    model = build_model(config("dora", "seed=1"), 2, init_state=state, total_steps=20)
    mine = dict(model.named_parameters())
    heads = peft_method.head_parameter_names(model)
    assert heads and all(torch.equal(mine[n], state[n]) for n in state if n not in heads)
    assert not any(torch.equal(mine[n], state[n]) for n in heads if mine[n].dim() == 2)
    with pytest.raises(KeyError, match="missing keys"):
        build_model(config("dora", "adapter.targets=[query,key,value]"), 2, init_state=state)


def test_record_holds_the_full_peft_config():
    record = peft_method.record(built("dora"))
    assert record["peft_type"] == "LORA" and record["peft_config"]["use_dora"] is True
    assert record["peft_config"]["r"] == 8 and "classifier" in record["peft_config"]["modules_to_save"]
    json.dumps(record)  # metrics.json holds it as it is


def test_any_field_from_the_command_line():
    cfg = config("peft", "adapter.peft_type=LOHA", "adapter.rank=4", "++adapter.config.use_effective_conv2d=true")
    validate(cfg)
    cfg = config("peft", "adapter.config={use_rslora: true, lora_alpha: 32}")
    assert built_from(cfg).peft_config["default"].use_rslora is True
    cfg = config("peft", 'adapter.config=\'{"use_rslora": true}\'')  # JSON text
    assert built_from(cfg).peft_config["default"].use_rslora is True


def built_from(cfg):
    return build_model(cfg, 2, total_steps=20)


@pytest.mark.parametrize("overrides, message", [
    (["adapter.config={not_a_field: 1}"], r"adapter\.config\.not_a_field: LoraConfig has no field 'not_a_field'"),
    (["adapter.peft_type=NOPE"], r"adapter\.peft_type='NOPE': not a PEFT method; known: .*DORA"),
    (["adapter.peft_type=IA3", "adapter.rank=4"], r"adapter\.rank=4: IA3Config has no rank"),
    (["adapter.peft_type=OFT", "adapter.rank=4", "adapter.alpha=0", "adapter.config={oft_block_size: 32}"],
     r"PEFT refuses it: .*r.*oft_block_size"),
    (["adapter.peft_type=ADALORA", "adapter.config={orth_reg_weight: -1}"],
     r"adapter=peft \(AdaLoraConfig, config \{\"orth_reg_weight\": -1\}\): PEFT refuses it: `orth_reg_weight`"),
])
def test_bad_config_is_a_clear_error_before_anything_is_written(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(config("peft", *overrides))


def test_packs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="PEFT's own modules"):
        check_packable([config("dora", "seed=0"), config("dora", "seed=1")])
    check_packable([config("dora")])  # one run is fine


def test_resolved_config_is_plain():
    adapter = OmegaConf.to_container(config("adalora").adapter, resolve=True)
    assert adapter["config"]["init_r"] == 12 and adapter["peft_type"] == "ADALORA"


# ---- end to end: train.py's path on the reference engine -------------------------------------------

def train(tiny_run, method, *overrides):
    from training.run import run
    extra = ["adapter.rank=16"] if method == "vera" else []
    cfg, given = tiny_run("task=rte", f"adapter={method}", "init_from=null", *extra, *overrides)
    return run(cfg, given), cfg


@pytest.mark.parametrize("method", READY)
def test_trains_and_records(method, tiny_run):
    from training.finished import load_run
    import rundir

    metrics, cfg = train(tiny_run, method, "max_seq_len=16")
    assert metrics["status"] == "done" and metrics["engine"] == "reference", metrics.get("reason")
    assert metrics["method"] == method and metrics["peft_config"]["task_type"] == "SEQ_CLS"
    model = load_run(rundir.run_dir(cfg), ["device=cpu"]).model
    assert metrics["trainable"]["with_head"] == model.get_nb_trainable_parameters()[0]
    assert metrics["trainable"]["adapter"] == count_trainable(model)["adapter"]


@pytest.mark.slow
def test_exported_adapter_gives_the_run_s_logits(tiny_run, tmp_path):
    """export.py's adapter, loaded by AutoPeftModelForSequenceClassification over the run's backbone,
    computes what the run computes; evaluate.py gives the recorded score."""
    from training.finished import evaluate_split, export, load_run
    import rundir

    metrics, cfg = train(tiny_run, "dora", "max_seq_len=16", "lr=1e-2")
    finished = load_run(rundir.run_dir(cfg), ["device=cpu"])
    assert evaluate_split(finished) == metrics["best"]
    ours = logits(finished.model)
    base().save_pretrained(tmp_path / "base")  # the tiny backbone is random: on disk for PEFT to load
    folder = export(finished, tmp_path / "adapter")
    settings = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**settings, "base_model_name_or_path": str(tmp_path / "base")}))
    loaded = peft.AutoPeftModelForSequenceClassification.from_pretrained(str(folder)).eval()
    torch.testing.assert_close(logits(loaded), ours, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours, logits(base()), atol=1e-4)


@pytest.mark.slow
def test_init_from_an_mnli_run_of_the_same_method(tiny_run):
    from safetensors.torch import load_file
    import rundir

    mnli, mnli_cfg = train(tiny_run, "loha", "task=mnli", "max_seq_len=16")
    rte, rte_cfg = train(tiny_run, "loha", "init_from=mnli", "max_seq_len=16")
    assert rte["status"] == "done" and rte["hyperparameters"]["init_from"] == str(rundir.run_dir(mnli_cfg))
    with pytest.raises(ValueError, match="cannot start from"):
        train(tiny_run, "lokr", f"init_from='{rundir.run_dir(mnli_cfg)}'")
    assert load_file(rundir.run_dir(rte_cfg) / "adapter.safetensors")


# ---- report.py preset=peft_zoo and the frontier, from records written with chosen scores -----------

ZOO_TASKS = ["sst2", "mrpc", "cola", "qnli", "rte", "stsb"]
# method -> (trainable adapter parameters, score on every task; seeds add -0.01, 0, +0.01)
ZOO = {"lora": (294912, 0.80), "dora": (313344, 0.82), "vera": (18432, 0.79), "lokr": (400000, 0.78)}
LABELS = {"lora": "LoRA (r=8)", "dora": "DoRA", "vera": "VeRA", "lokr": "LoKr"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from test_report import write_run
    from reporting.runner import ReportOptions, run_report

    root = tmp_path_factory.mktemp("zoo")
    for method, (trainable, score) in ZOO.items():
        for task in ZOO_TASKS:
            for seed, offset in enumerate((-0.01, 0.0, 0.01)):
                write_run(root, task, method, seed, score + offset, experiment="peft_zoo", grid="peft_zoo",
                          trainable=trainable, rank=8)
    result = run_report(ReportOptions(results_dir=root, preset="peft_zoo"), echo=lambda *_: None)["peft_zoo"]
    return root, result


def test_zoo_table_by_value(zoo):
    from scipy import stats

    root, res = zoo
    t = stats.t.ppf(0.975, 2) * 0.01 / 3 ** 0.5 * 100
    for method, (trainable, score) in ZOO.items():
        rows = res.long[res.long["row"] == LABELS[method]].set_index("task")
        for task in ZOO_TASKS:
            assert rows.loc[task, "value"] == pytest.approx(score * 100)
            assert rows.loc[task, "half_width"] == pytest.approx(t)
            assert rows.loc[task, "trainable_adapter"] == trainable
        assert rows.loc["average", "value"] == pytest.approx(score * 100)
    assert set(res.long["row"]) == set(LABELS.values())  # rows without runs (OFT, ...) are left out
    for suffix in ("md", "csv", "tex"):
        assert (root / "tables" / f"peft_zoo.{suffix}").exists()


def test_zoo_compares_each_method_with_lora(zoo):
    from scipy import stats

    _, res = zoo
    cmp = res.compare
    assert set(cmp["method"]) == {"DoRA", "VeRA", "LoKr"} and set(cmp["b"]) == {"LoRA (r=8)"}
    assert len(cmp) == 3 * len(ZOO_TASKS)
    dora = cmp[(cmp["method"] == "DoRA") & (cmp["task"] == "rte")].iloc[0]
    expected = stats.ttest_ind([0.81, 0.82, 0.83], [0.79, 0.80, 0.81], equal_var=False)
    assert dora["diff"] == pytest.approx(2.0) and dora["p"] == pytest.approx(expected.pvalue)
    assert dora["decision"] == "different" if expected.pvalue < 0.05 else dora["decision"] != "different"
    lokr = cmp[(cmp["method"] == "LoKr") & (cmp["task"] == "rte")].iloc[0]
    assert lokr["diff"] == pytest.approx(-2.0)


def test_frontier_points_pareto_and_files(zoo):
    from reporting.frontier import frontier_points, pareto_best

    root, res = zoo
    points = frontier_points(res.long, ZOO_TASKS)
    average = points[points["task"] == "average"].set_index("row")
    assert average.loc["DoRA", "value"] == pytest.approx(82.0)
    hw = res.long[(res.long["row"] == "DoRA") & (res.long["task"] == "rte")]["half_width"].iloc[0]
    assert average.loc["DoRA", "half_width"] == pytest.approx(hw / len(ZOO_TASKS) ** 0.5)  # √(6 h²)/6
    assert pareto_best(points[points["task"] == "rte"]) == ["VeRA", "LoRA (r=8)", "DoRA"]  # LoKr: dominated
    assert pareto_best(points[points["task"] == "average"]) == ["VeRA", "LoRA (r=8)", "DoRA"]
    for suffix in ("png", "pdf"):
        path = root / "figures" / f"peft_zoo_frontier.{suffix}"
        assert path.stat().st_size > 5000
    assert (root / "figures" / "peft_zoo_frontier.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_by_hand():
    import pandas as pd
    from reporting.frontier import pareto_best

    points = pd.DataFrame({"row": list("abcde"), "params": [10, 10, 100, 1000, 50],
                           "value": [70.0, 70.0, 80.0, 79.0, 60.0]})
    assert pareto_best(points) == ["a", "b", "c"]  # a tie keeps both; d and e are dominated


@needs_pdflatex
def test_zoo_latex_compiles(zoo, tmp_path):
    import subprocess
    from reporting.tables import latex_document

    root, _ = zoo
    for name in ("peft_zoo", "peft_zoo_compare"):
        text = (root / "tables" / f"{name}.tex").read_text()
        assert text.isascii(), name
        (tmp_path / f"{name}_doc.tex").write_text(latex_document([text]))
        out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}_doc.tex"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout[-2000:]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tiny_run, tmp_path, monkeypatch):
    """DoRA over two epochs, killed after the first epoch's checkpoint and run again, ends with the
    tensors of the run that was never stopped (the checkpoint holds PEFT's trainable tensors)."""
    from safetensors.torch import load_file
    import rundir
    import training.checkpoint

    straight, cfg = train(tiny_run, "dora", "max_seq_len=16", "epochs=2", f"results_dir={tmp_path / 'straight'}")
    real_save = training.checkpoint.save

    def save_then_die(*args):
        real_save(*args)
        raise KeyboardInterrupt
    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_run, "dora", "max_seq_len=16", "epochs=2")
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    resumed, resumed_cfg = train(tiny_run, "dora", "max_seq_len=16", "epochs=2")
    assert resumed["best"] == straight["best"]
    a, b = (load_file(rundir.run_dir(c) / "adapter.safetensors") for c in (cfg, resumed_cfg))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
