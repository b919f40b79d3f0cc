"""Shared test helpers: compose a train.py configuration for the tiny model and the sample data."""
import importlib.util
import shutil

import pytest

from training.config import HARNESS_ROOT, compose

TINY = ["model=tiny", "data=sample", "device=cpu", "max_seq_len=32", "epochs=1", "batch_size=16",
        "log_every=5"]


# CI installs pdflatex (.ci/run); a machine without it skips the tests that compile the LaTeX tables.
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")


def last_wins(overrides) -> list[str]:
    """A command line with each key once, the last value given kept (train.py refuses a key given twice)."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    return [o for i, (o, k) in enumerate(zip(overrides, keys)) if k not in keys[i + 1:] or "=" not in o]


@pytest.fixture
def tiny_run(tmp_path):
    """compose(...) for a run of the tiny model on the sample data, under tmp_path/results."""
    def make(*overrides: str):
        given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}  # a key given replaces the default
        defaults = [o for o in (*TINY, f"results_dir={tmp_path / 'results'}") if o.split("=", 1)[0] not in given]
        overrides = [*defaults, *overrides]
        return compose(overrides), overrides
    return make


def entry(name: str):
    """A top-level script (evaluate.py, predict.py, ...) as a module: its main(argv) is what the command
    line runs."""
    spec = importlib.util.spec_from_file_location(f"{name}_entry", HARNESS_ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def token_layout(lengths: list[int]):
    """adapters/packed.py's TokenLayout of a token stream of members with `lengths` tokens each
    (member-major, as training/flat.py lays them out)."""
    import torch

    from adapters.packed import TokenLayout
    runs, widest, tokens = len(lengths), max(lengths), sum(lengths)
    member = torch.repeat_interleave(torch.arange(runs), torch.tensor(lengths))
    in_member = torch.cat([torch.arange(n) for n in lengths])
    grid_index = member * widest + in_member
    slot_token = torch.zeros(runs * widest, dtype=torch.int64)
    slot_token[grid_index] = torch.arange(tokens)
    return TokenLayout(grid_index, runs, widest, tokens, slot_token, member)
