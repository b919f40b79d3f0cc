"""Paper tables, comparisons, figures and the GLUE submission zip from a results directory.

    python report.py results_dir=DIR preset=symlora_table1 test_scores=FILE.csv ci=normal selection=best_epoch

Presets: symlora_table1 delora_table1 delora_table2 delora_table3 asymmetry lora_table2, all/summary
(default: whatever runs are there), papers (all six). Writes DIR/tables/<preset>.{md,csv,tex},
DIR/tables/<preset>_compare.*, DIR/tables/runs.csv, DIR/figures/*.{png,pdf}, DIR/submission/*.zip.
The work lives in ``reporting/``; see configs/report.yaml for every option.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from reporting.runner import run_report


@hydra.main(config_path="configs", config_name="report", version_base=None)
def main(cfg: DictConfig) -> None:
    c = OmegaConf.to_container(cfg, resolve=True)
    run_report(
        results_dir=c["results_dir"], preset=str(c["preset"]), ci=c.get("ci"), selection=c["selection"],
        setting=c["setting"], center=c.get("center"), test_scores=c.get("test_scores"),
        published=c.get("published"), compare=c.get("compare"), grid=c.get("grid"),
        expected_seeds=c.get("expected_seeds"), bootstrap_samples=c["bootstrap_samples"],
        bootstrap_seed=c["bootstrap_seed"], alpha=c["alpha"], figures=c["figures"],
        submission=c["submission"], figure_method=c.get("figure_method"),
        submission_partial=c["submission_partial"],
    )


if __name__ == "__main__":
    main()
