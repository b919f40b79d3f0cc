"""Every mistake a user can make on the command line is one line naming the key, file or folder, what
was found and what is accepted, with exit status 2 and nothing written. One table per entry point:
(arguments, a fragment of the message, files that must not exist or change afterwards).

The entry points' checks run in this process (training/cli.py's prepare_argv for train.py, sweep.py
and report.py; the verbs' main); a few rows run the real process, for its exit status and stderr."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from training.cli import check_grid_file, one_line_errors, prepare_argv, quote_path_values
from training.config import HARNESS_ROOT, compose
from tests.conftest import entry

QUICK = ["experiment=quickstart", "epochs=1"]

# train.py: refused before Hydra composes (prepare_argv), so before the training stack loads.
TRAIN_ROWS = [
    (["+adapter.rnak=4"], "unknown key adapter.rnak; did you mean adapter.rank?"),
    (["epoch=3"], "unknown key epoch; did you mean epochs?"),
    (["+epoch=3"], "unknown key epoch; did you mean epochs?"),
    (["+lr=1e-3"], "+lr=1e-3: lr exists; set it without the +"),
    (["lr=1e-3", "lr=2e-3"], "lr is given twice (lr=1e-3 and lr=2e-3)"),
    (["adapter=lora", "adapter=symlora"], "adapter is given twice"),
    (["adapter=lroa"], "adapter=lroa: no such option"),
    (["lr=abc"], "lr='abc': expected a number > 0"),
    (["device=gpu"], "device='gpu': expected auto, cpu, mps, cuda or cuda:<index>"),
    (["adapter.alpha=0"], "adapter.alpha=0: adapter=lora scales its update by alpha"),
    (["data=hub", "data.dir=/tmp"], "data.dir=/tmp: read only from a local GLUE folder; add data=glue_dir"),
    (["data=glue_dir"], "data.dir: data=glue_dir needs the GLUE folder"),
    (["pack.lr=[a]"], "pack.lr=['a']: expected null or a non-empty list, each a number > 0"),
    (["--experimental-rerun", "evil.pickle"], "--experimental-rerun is refused"),
    (["seed=0", "'lr=1"], "is not an override Hydra can read"),
]


def refused(capsys, prog: str, config: str, args: list[str], **where) -> str:
    with pytest.raises(SystemExit) as exit_:
        prepare_argv(prog, config, [prog, *args], **where)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: "), err  # one line
    return err


@pytest.mark.parametrize("args, fragment", TRAIN_ROWS, ids=[" ".join(a) for a, _ in TRAIN_ROWS])
def test_train_refuses_before_anything_is_written(args, fragment, capsys, tmp_path):
    err = refused(capsys, "train.py", "train", [*QUICK, f"results_dir={tmp_path}", *args])
    assert fragment in err
    assert not any(tmp_path.iterdir())


SWEEP_ROWS = [
    (["grid=smoke", "+grid.lrs=[1e-3]"], "unknown key grid.lrs; did you mean grid.lr?"),
    (["grid=smoke", "grid.lrs=[1e-3]"], "unknown key grid.lrs; did you mean grid.lr?"),
    (["grid=smoke", "epoch=1"], "unknown key epoch; did you mean epochs?"),
    (["grid=smok"], "grid=smok: no such option"),
    (["grid=smoke", "grid.tasks=[foo]"], "smoke.yaml with grid.tasks=[foo]: tasks holds foo; expected among cola"),
    (["grid=smoke", "grid.methods=[lroa]"], "methods holds lroa; did you mean lora?"),
    (["grid=smoke", "--experimental-rerun", "x"], "--experimental-rerun is refused"),
]


@pytest.mark.parametrize("args, fragment", SWEEP_ROWS, ids=[" ".join(a) for a, _ in SWEEP_ROWS])
def test_sweep_refuses_unknown_keys(args, fragment, capsys, tmp_path):
    assert fragment in refused(capsys, "sweep.py", "sweep", [f"results_dir={tmp_path}", *args])
    assert not any(tmp_path.iterdir())


def test_a_grid_files_unknown_key_is_named_with_its_file(capsys, tmp_path):
    (tmp_path / "grid").mkdir()
    grid = tmp_path / "grid" / "typo.yaml"
    grid.write_text("name: typo\ntasks: [rte]\nmethods: [lora]\nlrs: [1.0e-3]\nseeds: [0]\n")
    err = refused(capsys, "sweep.py", "sweep", ["--config-dir", str(tmp_path), "grid=typo", "dry_run=true"])
    assert f"{grid}: unknown key lrs; did you mean lr?" in err
    check_grid_file(compose(["grid=smoke"], config_name="sweep"))  # a bundled grid passes


REPORT_ROWS = [
    (["alph=0.1"], "unknown key alph; did you mean alpha?"),
    (["preset=smoke", "preset=all"], "preset is given twice"),
    (["--experimental-rerun", "x"], "--experimental-rerun is refused"),
]


@pytest.mark.parametrize("args, fragment", REPORT_ROWS, ids=[" ".join(a) for a, _ in REPORT_ROWS])
def test_report_refuses_unknown_keys(args, fragment, capsys):
    import report  # its options live in reporting/report.yaml
    assert fragment in refused(capsys, "report.py", "report", args, config_dir=report.CONFIG_DIR)


def test_help_and_good_commands_pass_untouched():
    for args in (["--help"], [*QUICK, "seed=3"], ["-m", "adapter=lora,symlora", "seed=0,1"], ["--cfg", "job"]):
        assert prepare_argv("train.py", "train", ["train.py", *args]) == ["train.py", *args]


def test_a_run_folder_is_accepted_as_written_in_init_from():
    folder = "results/runs/sst2/lora/lr=0.003,bs=16,r=8,h=ab0edb04/seed=0"
    [quoted] = quote_path_values([f"init_from={folder}"])
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert OverridesParser.create().parse_override(quoted).value() == folder
    assert quote_path_values(["init_from=mnli", "lr=1e-3"]) == ["init_from=mnli", "lr=1e-3"]


# The model and data, checked by train.py after composing (training/preflight.py), before run_records.
PREFLIGHT_ROWS = [
    (["max_seq_len=1024"], "max_seq_len=1024: assets/tiny-roberta has positions for 512 tokens"),
    (["model.name_or_path=assets/tiny-robreta"], "no such folder", ),
    (["data=glue_dir", "data.dir=/nonexistent/glue"], "GLUE data folder not found: /nonexistent/glue"),
    (["model.name_or_path={notok}"], "its tokenizer has 5 tokens for a vocabulary of 767"),
    (["adapter.targets=[query,vlaue]"], "adapter.targets: vlaue names no linear layer of assets/tiny-roberta"),
]


@pytest.mark.parametrize("args, fragment", PREFLIGHT_ROWS, ids=[" ".join(a) for a, _ in PREFLIGHT_ROWS])
def test_model_and_data_are_checked_before_a_run_folder_exists(args, fragment, capsys, tmp_path):
    from training.preflight import preflight

    notok = tmp_path / "notok"  # a model folder without its tokenizer files
    notok.mkdir()
    (notok / "config.json").write_text((HARNESS_ROOT / "assets" / "tiny-roberta" / "config.json").read_text())
    results = tmp_path / "results"
    cfg = compose([*QUICK, f"results_dir={results}", *(a.format(notok=notok) for a in args)])
    with pytest.raises(SystemExit) as exit_, one_line_errors("train.py"):
        preflight(cfg)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err
    assert not results.exists()
    if "robreta" in args[0]:
        assert "did you mean assets/tiny-roberta?" in err


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=HARNESS_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("script, args, fragment", [
    ("train.py", ["epoch=3"], "train.py: epoch=3: unknown key epoch; did you mean epochs?"),
    ("train.py", ["lr=abc"], "train.py: lr='abc': expected a number > 0"),
    ("train.py", ["model.name_or_path=assets/tiny-robreta"], "no such folder ("),
    ("sweep.py", ["grid=smoke", "+grid.lrs=[1e-3]"], "sweep.py: +grid.lrs=[1e-3]: unknown key grid.lrs"),
    ("report.py", ["alph=0.1"], "report.py: alph=0.1: unknown key alph"),
])
def test_the_process_exits_2_with_one_line(script, args, fragment, tmp_path):
    out = run_script(script, f"results_dir={tmp_path}", *args)
    assert out.returncode == 2 and out.stderr.strip() == out.stderr.strip().splitlines()[0], out.stderr
    assert fragment in out.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_model_check_in_the_real_process_leaves_no_run_folder(tmp_path):
    out = run_script("train.py", *QUICK, f"results_dir={tmp_path}", "max_seq_len=1024")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("train.py: max_seq_len=1024: ")
    assert not (tmp_path / "runs").exists()


# evaluate.py, predict.py, export.py on a finished tiny run.
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from conftest import TINY
    from rundir import run_dir
    from training.run import run

    results = tmp_path_factory.mktemp("errors")
    overrides = [*TINY, f"results_dir={results}", "task=sst2"]
    assert run(compose(overrides), overrides)["status"] == "done"
    return run_dir(compose(overrides))


def test_verbs_refuse_bad_folders_keys_and_files(finished, tmp_path, capsys):
    run = str(finished)
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"sentence\nfine\n\xff not utf-8\n")
    good = tmp_path / "good.tsv"
    good.write_text("sentence\nfine\n")
    header_only = tmp_path / "empty.tsv"
    header_only.write_text("sentence\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"sentence": "a"}\n{oops\n')
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    rows = [
        ("evaluate", [run, str(finished.parent)], "one run folder at a time"),
        ("evaluate", [run, "data.dirr=X"], "data.dirr=X: unknown key data.dirr; did you mean data.dir?"),
        ("evaluate", [run, "devcie=cpu"], "unknown key devcie; did you mean device?"),
        ("evaluate", [run, "device=gpu"], "device='gpu': expected"),
        ("evaluate", [run, "device=cpu", "device=cuda"], "device is given twice"),
        ("evaluate", [str(tmp_path / "nope")], "nope: no such folder"),
        ("predict", [run, str(bad)], f"{bad}:3: byte 0xff at column 1 is not UTF-8"),
        ("evaluate", [run, "--split", "nope"], "split 'nope' is not in sst2's data"),
        ("predict", [run, str(header_only)], f"{header_only}: no examples to predict"),
        ("predict", [run, str(broken)], f"{broken}:2: not JSON"),
        ("predict", [run, str(tmp_path / "missing.tsv")], "missing.tsv: no such file"),
        ("predict", [run, str(good), "--output", str(good)], "is the input file"),
        ("predict", [run, str(header_only), "--output", str(tmp_path / "no" / "out.tsv")], "its folder does not exist"),
        ("export", [run, str(mine)], f"{mine} is not empty; give a new folder, or --overwrite"),
    ]
    for script, args, fragment in rows:
        assert entry(script).main(args) == 2, (script, args)
        err = capsys.readouterr().err
        assert err.startswith(f"{script}.py: ") and err.count("\n") == 1 and fragment in err, (script, args, err)
    assert (mine / "README.md").read_text() == "my notes\n"  # the user's files untouched
    assert good.read_text() == "sentence\nfine\n"


def test_export_of_a_random_base_is_merged_and_loads_as_its_card_says(finished, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "exported"
    assert entry("export").main([str(finished), str(out)]) == 0
    assert "exporting the merged model" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    assert "AutoModelForSequenceClassification.from_pretrained" in card
    AutoModelForSequenceClassification.from_pretrained(str(out))  # the card's line, on the folder
    assert json.loads((out / "config.json").read_text())["model_type"] == "roberta"


def test_a_head_of_another_size_is_replaced_by_one_of_the_tasks_size(tiny_run, tmp_path, caplog):
    """A checkpoint fine-tuned on a 2-label task (SST-2) trained on MNLI: a new 3-label head, one line."""
    import logging

    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from training.model import build_model

    tiny = HARNESS_ROOT / "assets" / "tiny-roberta"
    folder = tmp_path / "sst2-model"
    AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(tiny, num_labels=2)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)
    cfg, _ = tiny_run("task=mnli", f"model.name_or_path={folder}", "model.random_init=false")
    with caplog.at_level(logging.INFO, logger="training.model"):
        model = build_model(cfg, 3)
    assert model.classifier.out_proj.out_features == 3
    assert "has a classification head of another size" in caplog.text and "3 label(s)" in caplog.text


def test_a_full_disk_is_one_line_naming_the_file():
    import errno

    from training.cli import harness_error_message

    full = OSError(errno.ENOSPC, "No space left on device", "/r/runs/x/adapter.safetensors")
    assert harness_error_message(full).startswith("no space left on the device writing /r/runs/x/adapter.safetensors")
    torch_save = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    assert "as on a full disk" in harness_error_message(torch_save)
    assert harness_error_message(KeyError("a bug")) is None  # a bug keeps its traceback


def test_a_logger_that_cannot_start_is_one_line(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    from training.loggers import check_logger

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuch-scheme://x")  # no MLflow store has that scheme
    with pytest.raises(ValueError, match=r"^logger=mlflow: cannot start \(") as error:
        check_logger("mlflow", tmp_path)
    assert "\n" not in str(error.value)
