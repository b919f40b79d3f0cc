"""Run a grid of training runs: only what is missing, in the right order, through any Hydra launcher.

    python sweep.py grid=smoke results_dir=/tmp/sweep                   # sequential, in this process
    python sweep.py grid=symlora_table1 dry_run=true                     # runs to do / done, GPU-hours
    python sweep.py grid=symlora_table1 hydra/launcher=local_gpus gpus=4 # one run per local GPU
    python sweep.py grid=symlora_table1 hydra/launcher=slurm hydra.launcher.partition=gpu
    python sweep.py grid=smoke retry_failed=true                         # run failed runs again

Any train.py override passes through to every run (model=tiny data=sample epochs=1 ...). Grids are
in configs/grid/, the options in configs/sweep.yaml; the logic is in sweeping/.
"""
import os
import sys

from training.cli import one_line_errors, prepare_argv, quiet_interrupt

if __name__ == "__main__":
    sys.argv = prepare_argv("sweep.py", "sweep")  # unknown or repeated keys: one line before Hydra composes
    # Hydra hands the sweep's exceptions up instead of printing its own trace, so that a user's error
    # (a bad file, a full disk) is one line here; any other keeps its full traceback.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    from sweeping.cli import main

    with quiet_interrupt("sweep.py"), one_line_errors("sweep.py"):
        main()
