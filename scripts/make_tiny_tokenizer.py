#!/usr/bin/env python
"""Build ``assets/tiny-roberta/``: a RoBERTa-style byte-level BPE tokenizer trained offline on the
bundled synthetic sample (``data/sample/``) and the ``config.json`` of a tiny RobertaConfig.

No weights are stored: the model is built randomly from the config.  Both load offline with
``AutoTokenizer.from_pretrained("assets/tiny-roberta")`` / ``AutoConfig.from_pretrained(...)``.
Special tokens as RoBERTa: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>``; pairs are
encoded ``<s> A </s></s> B </s>``.  Usage: ``python scripts/make_tiny_tokenizer.py [out_dir]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
OUT = ROOT / "assets" / "tiny-roberta"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
VOCAB_SIZE = 1000


def corpus():
    for path in sorted(SAMPLE.rglob("*.tsv")):
        with open(path, encoding="utf-8-sig") as fh:
            for line in fh:
                for field in line.rstrip("\n").split("\t"):
                    if " " in field and not field.startswith("("):
                        yield field


def main(out: Path = OUT):
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig

    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(list(corpus()), vocab_size=VOCAB_SIZE, min_frequency=2,
                            special_tokens=SPECIALS, show_progress=False)
    tok = bpe._tokenizer
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
        trim_offsets=True, add_prefix_space=False,
    )
    assert [tok.token_to_id(t) for t in SPECIALS[:4]] == [0, 1, 2, 3]
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=512, padding_side="right",
    )
    hf.model_input_names = ["input_ids", "attention_mask"]
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out))
    # name the RoBERTa class (not the generic backend) so transformers 4.x and 5.x both load it
    cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "RobertaTokenizer"
    tok_cfg["add_prefix_space"] = False
    tok_cfg["trim_offsets"] = True
    cfg_path.write_text(json.dumps(tok_cfg, indent=2, sort_keys=True) + "\n")

    config = RobertaConfig(
        vocab_size=len(hf), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
    )
    config.save_pretrained(str(out))
    print(f"wrote {out} (vocab {len(hf)})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
