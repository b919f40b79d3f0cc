"""Paper tables, comparisons, figures and the GLUE submission zip from a results directory.

    python report.py results_dir=DIR preset=symlora_table1 test_scores=FILE.csv
    python report.py --help          # the presets and every option (reporting/report.yaml)

The options live in ``reporting/report.yaml``, apart from ``configs/``: there ``grid`` is the sweep's
config group, and ``grid=smoke`` would be taken for a group choice instead of this option.

The work lives in ``reporting/``; nothing heavy (pandas, matplotlib, torch) is imported until a report
is made, so ``--help`` answers at once.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from training.cli import fail, one_line_errors, prepare_argv, quiet_interrupt


CONFIG_DIR = Path(__file__).resolve().parent / "reporting"  # report.yaml, for Hydra and the override checks


@hydra.main(config_path=str(CONFIG_DIR), config_name="report", version_base=None)
def main(cfg: DictConfig) -> None:
    from reporting.runner import ReportInputError, ReportOptions, run_report

    with one_line_errors("report.py"):  # a bad file or full disk: one line, exit status 2
        try:
            run_report(ReportOptions.from_mapping(OmegaConf.to_container(cfg, resolve=True)))
        except (ReportInputError, KeyError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            fail("report.py", message)


if __name__ == "__main__":
    with quiet_interrupt("report.py"):
        sys.argv = prepare_argv("report.py", "report", config_dir=CONFIG_DIR)  # unknown or repeated keys: one line before Hydra composes
        main()
