"""Export a finished run (its best epoch) as a PEFT LoRA adapter or a merged Transformers model,
with its tokenizer and a model card; optionally push it to the Hugging Face Hub.

    python export.py results/runs/rte/lora/<setting>/seed=0 exported/rte-lora
    python export.py <run dir> exported/rte-symlora --merged          # any method; a plain model
    python export.py <run dir> exported/rte-lora --push-to-hub me/roberta-base-rte-lora --private

A PEFT adapter loads with peft.AutoPeftModelForSequenceClassification.from_pretrained(<folder>)
and gives the run's logits; methods that are not a plain LoRA update (SymLoRA with lambda != 1,
BitFit, full fine-tuning) export with --merged.
"""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run", help="a run directory (results/runs/<task>/<method>/<setting>/seed=<s>)")
    parser.add_argument("output", help="the folder to write")
    parser.add_argument("--merged", action="store_true", help="merge the adapter into the weights")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the folder to this Hub repository")
    parser.add_argument("--private", action="store_true", help="create the Hub repository private")
    args = parser.parse_args(argv)
    from training.finished import export, load_run, push_to_hub  # the training stack, after --help

    try:
        folder = export(load_run(args.run, ["device=cpu"]), args.output, merged=args.merged)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported to {folder}")
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(folder, args.push_to_hub, private=args.private)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
