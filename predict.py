"""Predict new examples with a finished run (its best epoch): reads a .tsv, .csv or .jsonl file with
the task's text columns (SST-2 `sentence`; RTE `sentence1`, `sentence2`; MNLI `premise`,
`hypothesis`; ...), writes `index<TAB>prediction` (label names as in the GLUE files, or STS-B scores).

    python predict.py results/runs/sst2/lora/<setting>/seed=0 reviews.tsv
    python predict.py <run dir> pairs.jsonl --output predictions.tsv device=cpu
"""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run", help="a run directory (results/runs/<task>/<method>/<setting>/seed=<s>)")
    parser.add_argument("input", help="a .tsv, .csv or .jsonl file with the task's text columns")
    parser.add_argument("--output", help="where to write the predictions (default: standard output)")
    parser.add_argument("overrides", nargs="*", help="key=value changes to the run's config (device=cpu)")
    args = parser.parse_args(argv)
    from training.finished import load_run, predict_texts, read_texts  # the training stack, after --help

    try:
        run = load_run(args.run, args.overrides)
        predictions = predict_texts(run, read_texts(args.input, run.task.text_fields))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(predictions))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
