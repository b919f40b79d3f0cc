"""The `peft_zoo` report preset: every method, the harness's and PEFT's (adapters/peft_method.py), one
row each, one column per task, against LoRA (Welch's t-test and TOST per method and task), with the
efficiency frontier (reporting/frontier.py). Runs: ``python sweep.py grid=peft_zoo``."""
from __future__ import annotations

from dataclasses import replace

from .presets import Entry, Preset

REFERENCE = "LoRA (r=8)"
# (label, variant = the method's adapter name, rank: None takes the adapter file's)
METHODS = [
    (REFERENCE, "lora", 8), ("SymLoRA (r=8)", "symlora", 8), ("DeLoRA", "delora", None),
    ("B-only", "b_only", None), ("BitFit", "bitfit", None),
    ("DoRA", "dora", None), ("PiSSA", "pissa", None), ("VeRA", "vera", None), ("AdaLoRA", "adalora", None),
    ("IA3", "ia3", None), ("LoHa", "loha", None), ("LoKr", "lokr", None), ("OFT", "oft", None),
]

PEFT_ZOO = Preset(
    name="peft_zoo", grid="peft_zoo", title="Any PEFT method against LoRA (roberta-base, GLUE)",
    layout="methods_as_rows", tasks=["sst2", "mrpc", "cola", "qnli", "rte", "stsb"],
    # only LoRA, the reference, is shown without runs; every other row appears once it has runs
    entries=[Entry(label, variant, rank, required=label == REFERENCE) for label, variant, rank in METHODS],
    ci="t", average="ours", model="roberta-base", compare_each_to=REFERENCE, frontier=True,
    caption="Each method at its adapter file's settings (configs/adapter/), its learning rate searched on "
            "one seed, then 5 seeds: mean over seeds with the 95% Student-t interval. Trainable: adapter "
            "parameters (the head, trained by every method, not counted). DoRA, PiSSA, VeRA, AdaLoRA, IA3, "
            "LoHa, LoKr and OFT are built by PEFT itself.",
)


def compare_each(preset: Preset, entries, tasks, chosen, opts, col, ci, center):
    """Every validation row against ``preset.compare_each_to``, per task: the two-method comparison of
    reporting/build.py for each pair, stacked, with the row's label in a ``method`` column."""
    import pandas as pd

    from .build import _compare

    frames, note = [], ""
    for e in entries:
        if e.split != "validation" or e.label == preset.compare_each_to:
            continue
        df, text = _compare(preset, entries, tasks, chosen, replace(opts, compare=[e.label, preset.compare_each_to]),
                            col, ci, center)
        if not df.empty:
            frames.append(df.assign(method=e.label))
            note = text.replace(f"{e.label} vs", "each method vs", 1)
    if not frames:
        return pd.DataFrame(), f"no comparison: no method with finished seeds beside {preset.compare_each_to}"
    both = pd.concat(frames, ignore_index=True)
    return both[["method", *[c for c in both.columns if c != "method"]]], note
