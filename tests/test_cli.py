"""The command line as typed: help, config printing and completion answer without the training stack."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from training.config import CONFIG_DIR, HARNESS_ROOT, compose
from training.help import parse

HEAVY = ("torch", "transformers", "datasets", "peft")
GROUPS = ("model", "adapter", "task", "data", "optim", "experiment")


def imported_modules(*args: str, env: dict | None = None) -> tuple[str, set[str]]:
    """stdout of `python -X importtime train.py <args>` and the top-level modules it imported."""
    out = subprocess.run([sys.executable, "-X", "importtime", "train.py", *args], cwd=HARNESS_ROOT,
                         capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    modules = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s+(\S+)\s*$", out.stderr, re.M)}
    assert "hydra" in modules  # the import-time listing was read
    return out.stdout, modules


@pytest.mark.parametrize("args, env", [
    (["--help"], None),
    (["--cfg", "job", "task=mrpc"], None),
    (["--info", "defaults"], None),
    (["-sc", "query=bash"], {"COMP_LINE": "python train.py adapter=sy"}),
])
def test_entry_answers_without_the_training_stack(args, env):
    stdout, modules = imported_modules(*args, env=env)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    if args[0] == "-sc":
        assert "adapter=symlora" in stdout
    if args[0] == "--cfg":
        assert "name: mrpc" in stdout


def test_help_lists_every_group_option_and_key_with_its_description():
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=HARNESS_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for group in GROUPS:
        heading = re.search(rf"^{group}=\S+ +(\S.*)$", text, re.M)
        assert heading, f"group {group} has no line with a description"
        for path in (CONFIG_DIR / group).glob("*.yaml"):
            assert re.search(rf"^    {path.stem} +\S", text, re.M), f"{group}={path.stem} has no description"
    assert "grid=" not in text and "symlora_table1" not in text  # the sweep's group is not train.py's
    cfg = compose()
    top_level = {key for key in cfg if key not in GROUPS}
    for key in top_level:
        line = re.search(rf"^{re.escape(key)} +(\(.*?\))? +(\S.*)?$", text, re.M)
        assert line and line.group(2), f"key {key} has no description in --help"
    assert "(${task.lr})" in text  # a literal `$` survives Hydra's template substitution


def test_help_descriptions_come_from_the_yaml_comments(tmp_path):
    (tmp_path / "color").mkdir()
    (tmp_path / "color" / "red.yaml").write_text("# @package _global_\n# Warm. More text.\nhue: 0\n")
    (tmp_path / "color" / "blue.yaml").write_text("hue: 240   # cold\n")
    (tmp_path / "app.yaml").write_text(
        "# The app.\ndefaults:\n  - color: red   # which colour\n  - _self_\n\n"
        "size: 3          # how big\n  # and more about size\nnested:          # a block\n  depth: 2      # how deep\n"
        "hydra:\n  run:\n    dir: .  # not a key of the app\n")
    groups, keys = parse("app", tmp_path)
    assert groups == [("color", "red", "which colour")]
    assert keys == [("size", "3", "how big and more about size"), ("nested", "", "a block"),
                    ("nested.depth", "2", "how deep")]
    from training.help import help_text, option_description
    assert option_description(tmp_path / "color" / "red.yaml") == "Warm."
    assert option_description(tmp_path / "color" / "blue.yaml") == "cold"
    assert "The app." in help_text("app", tmp_path)


def test_missing_mnli_run_fails_fast_with_the_command_that_makes_it(tmp_path):
    """RTE starts from the matching MNLI run: before it exists, train.py stops before tokenising, with
    no traceback, and prints the command that makes it; that command then makes exactly that run."""
    overrides = ["model=tiny", "data=sample", "device=cpu", "epochs=1", "max_seq_len=32",
                 f"results_dir={tmp_path}"]
    out = subprocess.run([sys.executable, "train.py", *overrides, "task=rte"], cwd=HARNESS_ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()  # nothing tokenised or made
    command = re.search(r"^    (python train\.py .*)$", out.stderr, re.M).group(1)
    directory = re.search(r"and (\S+) holds no finished run", out.stderr).group(1)
    assert "task=mnli" in command and "init_from" not in command
    made = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=HARNESS_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert (Path(directory) / "metrics.json").exists()


def test_each_run_directory_records_its_command_and_log(tmp_path):
    overrides = ["model=tiny", "data=sample", "device=cpu", "epochs=1", "max_seq_len=32", "task=rte",
                 "init_from=null", f"results_dir={tmp_path}"]
    out = subprocess.run([sys.executable, "train.py", *overrides], cwd=HARNESS_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    [directory] = [p.parent for p in tmp_path.glob("runs/rte/lora/*/seed=0/metrics.json")]
    [command] = [json.loads(line) for line in (directory / "commands.jsonl").read_text().splitlines()]
    assert command["overrides"] == overrides and command["argv"][1:] == ["train.py", *overrides]
    log = (directory / "train.log").read_text()
    assert "rte/lora/lr=0.0005/seed=0 epoch 1: loss" in log and f"{directory}: done" in log


def test_records_wait_for_the_run_folder_and_never_make_it(tmp_path, caplog):
    import logging

    from training.records import run_records

    caplog.set_level(logging.INFO)  # as Hydra's logging configuration sets it in train.py
    directory = tmp_path / "run"
    with run_records([directory], ["train.py"], []):
        logging.getLogger("train").info("before")  # the checks: no run folder yet
        assert not directory.exists()
        directory.mkdir()                          # its lock makes it once training begins
        logging.getLogger("train").info("after")
    [command] = [json.loads(line) for line in (directory / "commands.jsonl").read_text().splitlines()]
    assert command["argv"][1:] == ["train.py"]
    log = (directory / "train.log").read_text()
    assert "train: before" in log and log.rstrip().endswith("train: after")
    with run_records([tmp_path / "never"], ["train.py"], []):
        logging.getLogger("train").info("a usage error")
    assert not (tmp_path / "never").exists()
