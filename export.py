"""Export a finished run (its best epoch) as a PEFT LoRA adapter or a merged Transformers model,
with its tokenizer and a model card; optionally push it to the Hugging Face Hub.

    python export.py results/runs/rte/lora/<setting>/seed=0 exported/rte-lora
    python export.py <run dir> exported/rte-symlora --merged          # any method; a plain model
    python export.py <run dir> exported/rte-lora --push-to-hub me/roberta-base-rte-lora --private

A PEFT adapter loads with peft.AutoPeftModelForSequenceClassification.from_pretrained(<folder>)
and gives the run's logits; methods that are not a plain LoRA update (SymLoRA with lambda != 1,
BitFit, full fine-tuning) export with --merged, and so does a run of a random model built from its
config (model=tiny, model.random_init=true), whose base no adapter could load (--adapter-only writes the adapter anyway). A folder that is not
empty is refused unless --overwrite.
"""
import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run", help="a run directory (results/runs/<task>/<method>/<setting>/seed=<s>)")
    parser.add_argument("output", help="the folder to write")
    parser.add_argument("--merged", action="store_true", help="merge the adapter into the weights")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder to this Hub repository")
    parser.add_argument("--private", action="store_true", help="create the Hub repository private")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    parser.add_argument("--adapter-only", action="store_true",
                        help="a PEFT adapter even for a random base (model.random_init=true) that you rebuild yourself")
    args = parser.parse_args(argv)
    from training.cli import report_error

    try:  # a bad folder: one line, exit status 2
        output = Path(args.output)
        if output.exists() and not output.is_dir():
            raise ValueError(f"{output} is a file; give a folder to write")
        if output.is_dir() and any(output.iterdir()) and not args.overwrite:
            raise ValueError(f"{output} is not empty; give a new folder, or --overwrite to replace the export's "
                             "files there (README.md, adapter or model files, tokenizer)")
        from training.finished import export, load_run, push_to_hub  # the training stack, after --help

        run = load_run(args.run, ["device=cpu"])
        merged = args.merged
        if run.cfg.model.get("random_init") and not merged and not args.adapter_only:
            # Its base exists on no disk and no Hub (random weights from a config): an adapter could
            # not be loaded, so the export is the whole model.
            print(f"{run.cfg.model.name_or_path} is a random model built from its config (model.random_init="
                  "true), which no adapter could load: exporting the merged model (as --merged; --adapter-only "
                  "writes the adapter alone)")
            merged = True
        folder = export(run, output, merged=merged)
    except Exception as error:  # noqa: BLE001 - report_error re-raises all but the user's errors
        return report_error("export.py", error)
    print(f"exported to {folder}")
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(folder, args.push_to_hub, private=args.private)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
