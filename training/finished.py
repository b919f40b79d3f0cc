"""A finished run, loaded back with its best epoch's adapter and head: evaluate it on a split, predict
new text with it, export it (PEFT adapter or merged model, with a model card), push it to the Hub.
The logic behind evaluate.py, predict.py and export.py."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import adapters
import rundir
from glue import compute_metrics, get_task, make_collator, tokenize_glue
from glue.submission import encode_predictions
from training.loop import predict
from training.model import FROM_LORA, build_model, build_tokenizer, load_init_state
from training.run import pick_device


@dataclass
class FinishedRun:
    directory: Path
    cfg: DictConfig
    metrics: dict
    task: object
    model: torch.nn.Module
    tokenizer: object
    device: torch.device


def load_run(directory: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> FinishedRun:
    """The run in `directory` (a finished one: metrics.json says done), its config.yaml changed by
    `key=value` overrides (e.g. `device=cpu`, `data.source=glue_dir data.dir=...`)."""
    directory = Path(directory)
    record = rundir.read_run(directory)
    if record.status != "done":
        raise FileNotFoundError(f"{directory} holds no finished run: it is {record.status}"
                                + (f" ({record.reason})" if record.reason else ""))
    metrics = record.metrics
    cfg = OmegaConf.merge(OmegaConf.load(directory / "config.yaml"), OmegaConf.from_dotlist(list(overrides)))
    task = get_task(cfg.task.name)
    init_from = metrics["hyperparameters"].get("init_from")
    # LoRA-of-LoRA is built around the MNLI LoRA it continues; the other methods from their own file.
    init_state = load_init_state(Path(init_from)) if cfg.adapter.name in FROM_LORA else None
    model = build_model(cfg, task.num_labels, init_state, total_steps=1)  # a schedule (AdaLoRA's) is not used here
    adapters.load_trainable(model, directory / "adapter.safetensors")
    device = pick_device(cfg.device)
    return FinishedRun(directory, cfg, metrics, task, model.to(device).eval(), build_tokenizer(cfg), device)


def evaluate_split(run: FinishedRun, split: str | None = None) -> dict:
    """Metrics on `split` (default: the task's validation splits), as metrics.json names them."""
    from training.data import RunData

    data = RunData(run.cfg, run.task, run.tokenizer)
    available = data.splits[run.task.name]
    splits = [(split, "")] if split else list(run.task.eval_splits)
    scores = {}
    for name, suffix in splits:
        if name not in available:
            raise ValueError(f"split {name!r} is not in {run.task.name}'s data; there are {sorted(available)}")
        [(predictions, labels, _)] = predict(run.model, data.eval_loader(name), 1, device=run.device,
                                             precision=run.cfg.precision)
        if (labels < 0).all():
            raise ValueError(f"split {name!r} has no labels (a test split): use predict.py for its predictions")
        scores.update({f"{m}{suffix}": v for m, v in compute_metrics(run.task, predictions, labels).items()})
    return scores


def read_texts(path: str | Path, fields: tuple[str, ...]) -> list[dict]:
    """Rows of a .tsv, .csv or .jsonl file with the task's text columns (other columns are ignored)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",",
                                       quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL))
    for number, row in enumerate(rows, start=2 if path.suffix != ".jsonl" else 1):
        missing = [f for f in fields if row.get(f) is None]
        if missing:
            raise ValueError(f"{path}, row {number}: no {missing} (the task reads the columns {list(fields)})")
    return rows


def predict_texts(run: FinishedRun, rows: list[dict]) -> list[str]:
    """Predictions for new examples (dicts with the task's text fields), encoded as in the GLUE
    prediction files (label names, or STS-B scores)."""
    import datasets

    fields = run.task.text_fields
    label = 0.0 if run.task.is_regression else -1
    raw = datasets.Dataset.from_dict({**{f: [str(row[f]) for row in rows] for f in fields},
                                      "label": [label] * len(rows), "idx": list(range(len(rows)))})
    tokenized = tokenize_glue(datasets.DatasetDict({"new": raw}), run.task, run.tokenizer,
                              max_seq_len=run.cfg.max_seq_len)["new"]
    loader = torch.utils.data.DataLoader(tokenized, batch_size=run.cfg.eval_batch_size,
                                         collate_fn=make_collator(run.tokenizer, run.cfg.pad_to_multiple_of))
    [(predictions, _, indices)] = predict(run.model, loader, 1, device=run.device, precision=run.cfg.precision)
    encoded = encode_predictions(run.task, predictions)
    by_index = dict(zip(indices.tolist(), encoded))
    return [by_index[i] for i in range(len(rows))]


def export(run: FinishedRun, out: str | Path, merged: bool = False) -> Path:
    """A PEFT LoRA adapter directory (or, with `merged`, a plain Transformers model) with the
    tokenizer and a model card."""
    out = Path(out)
    model = run.model.cpu()
    if merged:
        adapters.export_merged(model, out)
    else:
        adapters.export_peft(model, out, base_model_name_or_path=run.cfg.model.name_or_path)
    run.tokenizer.save_pretrained(str(out))
    (out / "README.md").write_text(model_card(run, merged))
    return out


def model_card(run: FinishedRun, merged: bool) -> str:
    """A Hub model card: metadata block, what was trained, the validation scores, how to load it."""
    m, hp = run.metrics, run.metrics["hyperparameters"]
    base = run.cfg.model.name_or_path
    scores = "\n".join(f"| {k} | {v * 100:.2f} |" for k, v in m["best"].items())
    if merged:
        load = ("from transformers import AutoModelForSequenceClassification\n"
                "model = AutoModelForSequenceClassification.from_pretrained(\"<this repo>\")")
    else:
        load = ("from peft import AutoPeftModelForSequenceClassification\n"
                "model = AutoPeftModelForSequenceClassification.from_pretrained(\"<this repo>\")")
    return f"""---
base_model: {base}
library_name: {"transformers" if merged else "peft"}
datasets:
- nyu-mll/glue
tags:
- glue
- {m["task"]}
- {m["method"]}
---
# {base} · {m["method"]} on GLUE {m["task"].upper()}

{"The adapter merged into the weights." if merged else f"A PEFT {m.get('peft_type', 'LORA')} adapter with its classification head."}
Trained with the glue-adapters harness: method `{m["method"]}`, rank {hp["rank"]}, alpha {hp["alpha"]},
learning rate {hp["lr"]}, batch size {hp["batch_size"]}, {hp["epochs"]} epochs, max length {hp["max_seq_len"]},
seed {m["seed"]}{f", started from {hp['init_from']}" if hp.get("init_from") else ""}. Best epoch {m["best_epoch"]}.

| validation metric | % |
|---|---|
{scores}

```python
{load}
```
"""


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Upload an exported folder to the Hub (needs `huggingface_hub` and a login); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload from glue-adapters")
    return str(url)
