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

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(config_path="reporting", config_name="report", version_base=None)
def main(cfg: DictConfig) -> None:
    from reporting.runner import ReportInputError, ReportOptions, run_report

    try:
        run_report(ReportOptions.from_mapping(OmegaConf.to_container(cfg, resolve=True)))
    except (ReportInputError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"report.py: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
