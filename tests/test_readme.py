"""Every command in the README's bash blocks, in the README's order, as a new user types them — on
the tiny model, the sample data and the CPU (`model=tiny data=sample device=cpu epochs=1
max_seq_len=32`, in place of the command's own values; train.py also `batch_size=16`). Sweeps run as dry runs (planning, estimate, launcher configuration; the sweep's
own tests train grids), install and test lines are skipped."""
import re
import shlex
import subprocess
import sys

import pytest

from training.config import HARNESS_ROOT

TINY = ["model=tiny", "device=cpu", "epochs=1", "max_seq_len=32"]
SCRIPTS = ("train.py", "sweep.py", "report.py", "evaluate.py", "predict.py", "export.py")


def readme_commands() -> list[str]:
    text = (HARNESS_ROOT / "README.md").read_text()
    lines = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    commands = [re.split(r"\s+#\s", line)[0].strip() for line in lines if not line.lstrip().startswith("#")]
    return [c for c in commands if c.startswith(("python ", "printf ")) and not c.startswith("python -m")]


def as_tested(command: str) -> str:
    """The command with this interpreter, the harness's scripts, and the tiny settings."""
    if not command.startswith("python "):
        return command
    script = command.split()[1]
    assert script in SCRIPTS, command
    words = shlex.split(command)[2:]
    extra = []
    if script in ("train.py", "sweep.py"):
        extra = TINY + ([] if any(w.startswith("data=") for w in words) else ["data=sample"])
        extra.append("dry_run=true" if script == "sweep.py" else "batch_size=16")  # a grid sets batch sizes
    command = command.replace("data.dir=/path/to/glue_data", f"data.dir={HARNESS_ROOT / 'data' / 'sample'}")
    rest = command.split(None, 2)[2] if len(command.split()) > 2 else ""
    # the tiny settings replace the command's own (a key given twice with two values is refused)
    replaced = {word.split("=", 1)[0] for word in extra}
    rest = " ".join(w for w in rest.split() if w.split("=", 1)[0] not in replaced)
    return " ".join([shlex.quote(sys.executable), shlex.quote(str(HARNESS_ROOT / script)), rest, *extra])


def test_readme_names_mnli_before_the_tasks_that_start_from_it():
    commands = [c for c in readme_commands() if c.startswith("python train.py")]
    mnli = next(i for i, c in enumerate(commands) if "task=mnli" in c)
    rte = next(i for i, c in enumerate(commands) if "task=rte" in c and "init_from=null" not in c)
    assert mnli < rte


@pytest.mark.slow
def test_every_readme_command_works_in_order(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 15 and commands[0] == "python train.py experiment=quickstart"
    for command in commands:
        out = subprocess.run(["bash", "-c", as_tested(command)], cwd=tmp_path, capture_output=True, text=True,
                             timeout=900)
        assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    assert len(list(tmp_path.glob("results/runs/rte/symlora/*/seed=3/metrics.json"))) == 1
    # the tiny model is random from its config: export.py writes it merged (its card's line loads it)
    assert (tmp_path / "exported" / "sst2-lora" / "model.safetensors").exists()
