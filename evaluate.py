"""Evaluate a finished run (its best epoch) on a split of its task; prints the metrics as JSON.

    python evaluate.py results/runs/rte/lora/<setting>/seed=0
    python evaluate.py <run dir> --split train
    python evaluate.py <run dir> data.source=glue_dir data.dir=/path/to/glue_data device=cpu

Overrides (key=value) change the run's saved config.yaml for this evaluation only.
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run", help="a run directory (results/runs/<task>/<method>/<setting>/seed=<s>)")
    parser.add_argument("--split", help="a split of the task's data (default: its validation split(s))")
    parser.add_argument("overrides", nargs="*", help="key=value changes to the run's config")
    args = parser.parse_args(argv)
    from training.cli import check_run_overrides, report_error

    try:  # a bad folder, key or file: one line, exit status 2
        check_run_overrides(args.run, args.overrides)
        from training.finished import evaluate_split, load_run  # the training stack, after --help

        scores = evaluate_split(load_run(args.run, args.overrides), args.split)
    except Exception as error:  # noqa: BLE001 - report_error re-raises all but the user's errors
        return report_error("evaluate.py", error)
    print(json.dumps(scores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
