"""Predict new examples with a finished run (its best epoch): reads a .tsv, .csv or .jsonl file with
the task's text columns (SST-2 `sentence`; RTE `sentence1`, `sentence2`; MNLI `premise`,
`hypothesis`; ...), writes `index<TAB>prediction` (label names as in the GLUE files, or STS-B scores).

    python predict.py results/runs/sst2/lora/<setting>/seed=0 reviews.tsv
    python predict.py <run dir> pairs.jsonl --output predictions.tsv device=cpu
"""
import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run", help="a run directory (results/runs/<task>/<method>/<setting>/seed=<s>)")
    parser.add_argument("input", help="a .tsv, .csv or .jsonl file with the task's text columns")
    parser.add_argument("--output", help="where to write the predictions (default: standard output)")
    parser.add_argument("overrides", nargs="*", help="key=value changes to the run's config (device=cpu)")
    args = parser.parse_args(argv)
    from training.cli import check_run_overrides, report_error

    try:  # a bad folder, key or file: one line, exit status 2
        check_run_overrides(args.run, args.overrides)
        check_input(args.input)
        if args.output and not Path(args.output).resolve().parent.is_dir():
            raise FileNotFoundError(f"--output {args.output}: its folder does not exist")
        if args.output and Path(args.output).resolve() == Path(args.input).resolve():
            raise ValueError(f"--output {args.output} is the input file: give another file to write")
        from training.finished import load_run, predict_texts, read_texts  # the training stack, after --help

        run = load_run(args.run, args.overrides)
        rows = read_texts(args.input, run.task.text_fields)
        if not rows:
            raise ValueError(f"{args.input}: no examples to predict (a header line, then one example per line)")
        predictions = predict_texts(run, rows)
    except Exception as error:  # noqa: BLE001 - report_error re-raises all but the user's errors
        return report_error("predict.py", error)
    text = "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(predictions))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def check_input(path: str) -> None:
    """The input file exists, is UTF-8 text, and (.jsonl) holds one JSON object per line: each error
    names the file and line."""
    from glue.loading import read_utf8

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file" + (" (a folder)" if Path(path).is_dir() else ""))
    if Path(path).suffix not in (".tsv", ".csv", ".jsonl"):
        raise ValueError(f"{path}: expected a .tsv, .csv or .jsonl file")
    text = read_utf8(path)
    if Path(path).suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                row = json.loads(line) if line.strip() else {}
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg}); expected one object per line") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object ({{\"sentence\": ...}}), found {line[:60]!r}")


if __name__ == "__main__":
    sys.exit(main())
