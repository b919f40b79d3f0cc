#!/usr/bin/env python
"""Generate the bundled SYNTHETIC GLUE sample in ``data/sample/`` (original GLUE TSV layout).

Every task of GLUE in the layout of the GLUE download, with its quirks: CoLA train/dev without a
header, MRPC train with a UTF-8 byte-order mark, two malformed QQP train rows (a question broken by
a newline), MNLI with parse columns and string labels in the last column, STS-B with 10 columns,
AX (diagnostic) test only.  Texts contain unbalanced double quotes in QQP/MNLI, as the real files
do, so a reader that processes quotes breaks.

Labels come from simple lexical rules a tiny random transformer can learn (see data/sample/
README.md).  Deterministic: fixed seed.  Usage: ``python scripts/make_sample_data.py [out_dir]``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20240607
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "sample"

NOUNS = ("cat dog bird horse fish lion tiger mouse rabbit snake bear wolf fox goat sheep cow "
         "duck owl frog deer car bus train boat plane bike truck ship book lamp").split()
PLACES = "park garden kitchen city forest river house school market station".split()
POS = ("good great wonderful excellent superb lovely brilliant delightful charming enjoyable "
       "moving beautiful fantastic pleasant funny").split()
NEG = ("bad awful terrible boring dull poor horrible weak tedious messy ugly painful "
       "annoying lame clumsy").split()
SUBJECTS = "movie film story plot script cast ending show acting music".split()
ADVERBS = ["", "", "really", "truly", "quite", "rather", "very", "simply"]
VERBS = "sees chases likes follows finds watches helps meets".split()
ADJ = "big small old young red quiet happy fast".split()
MATCHED_GENRES = "fiction government slate telephone travel".split()
MISMATCHED_GENRES = "facetoface letters nineeleven oup verbatim".split()
NLI3 = ("entailment", "neutral", "contradiction")

# train / dev / test sizes
SIZES = {"default": (400, 100, 50), "sst2": (800, 100, 50)}


def sizes(task):
    return SIZES.get(task, SIZES["default"])


def write(path: Path, header, rows, bom=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="\n") as fh:
        if header is not None:
            fh.write("\t".join(header) + "\n")
        for r in rows:
            fh.write("\t".join(str(x) for x in r) + "\n")


def balanced(rng, n, k):
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


# ------------------------------------------------------------------------------ tasks ----------


def gen_sst2(rng, n):
    out = []
    for y in balanced(rng, n, 2):
        adj = rng.choice(POS if y else NEG)
        adv = rng.choice(ADVERBS)
        subj = rng.choice(SUBJECTS)
        tpl = rng.choice(["the {s} was {a} {j} .", "a {a} {j} {s} .", "this {s} is {a} {j}",
                          "{j} {s} , {a} {j} ."])
        out.append((" ".join(tpl.format(s=subj, a=adv, j=adj).split()), y))
    return out


def gen_cola(rng, n):
    out = []
    for y in balanced(rng, n, 2):
        a, b = rng.sample(NOUNS, 2)
        words = ["the", rng.choice(ADJ), a, rng.choice(VERBS), "the", b, "."]
        if not y:
            while True:
                s = words[:]
                rng.shuffle(s)
                if s != words and s[-1] != ".":
                    break
            words = s
        out.append((" ".join(words), y))
    return out


def gen_mrpc(rng, n):
    out = []
    for y in balanced(rng, n, 2):
        a, c = rng.sample(NOUNS, 2)
        p1, p2 = rng.choice(PLACES), rng.choice(PLACES)
        s1 = f"the {a} was seen near the {p1} on {rng.choice(['monday', 'friday', 'sunday'])} ."
        key = a if y else c
        s2 = f"officials said a {key} was spotted close to the {p2} ."
        out.append((s1, s2, y))
    return out


def gen_qqp(rng, n):
    out = []
    for y in balanced(rng, n, 2):
        a, c = rng.sample(NOUNS, 2)
        q1 = rng.choice([f"how do i clean my {a} ?", f'what does "{a} mean ?',
                         f"why is my {a} so loud ?"])
        key = a if y else c
        q2 = rng.choice([f"what is the best way to wash a {key} ?",
                         f"how can i take care of a {key} ?", f'is a "{key}" expensive ?'])
        out.append((q1, q2, y))
    return out


def gen_stsb(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(0, 5)
        words = rng.sample(NOUNS, 10)
        s1w, rest = words[:5], words[5:]
        s2w = rng.sample(s1w, k) + rest[: 5 - k]
        rng.shuffle(s2w)
        score = min(5.0, max(0.0, k + rng.uniform(-0.4, 0.4)))
        out.append(("the " + " and the ".join(s1w) + " .", "the " + " and the ".join(s2w) + " .",
                    round(score, 3)))
    return out


def gen_nli3(rng, n):
    out = []
    for y in balanced(rng, n, 3):
        a, b, c = rng.sample(NOUNS, 3)
        place = rng.choice(PLACES)
        prem = rng.choice([f"the {a} and the {b} are in the {place} .",
                           f'a "{a} sleeps next to the {b} in the {place} .'])
        if y == 0:
            hyp = f"there is a {rng.choice([a, b])} in the {place} ."
        elif y == 1:
            hyp = f"there is a {c} in the {place} ."
        else:
            hyp = f"there is no {rng.choice([a, b])} in the {place} ."
        out.append((prem, hyp, y))
    return out


def gen_qnli(rng, n):
    out = []
    for y in balanced(rng, n, 2):  # 0 entailment, 1 not_entailment
        a, b, c = rng.sample(NOUNS, 3)
        key = a if y == 0 else c
        q = rng.choice([f"where is the {key} ?", f"what did the {key} do ?"])
        s = f"the {a} stayed in the {rng.choice(PLACES)} while the {b} left ."
        out.append((q, s, y))
    return out


def gen_rte(rng, n):
    out = []
    for y in balanced(rng, n, 2):  # 0 entailment, 1 not_entailment
        a, b, c = rng.sample(NOUNS, 3)
        place = rng.choice(PLACES)
        s1 = f"yesterday the {a} {rng.choice(VERBS)} the {b} in the {place} ."
        key = rng.choice([a, b]) if y == 0 else c
        out.append((s1, f"the {key} was in the {place} .", y))
    return out


def gen_wnli(rng, n):
    out = []
    for y in balanced(rng, n, 2):  # 1 entailment, 0 not_entailment (WNLI's flipped ids)
        a, b, c = rng.sample(NOUNS, 3)
        adj = rng.choice(ADJ)
        s1 = f"the {a} {rng.choice(VERBS)} the {b} because it was {adj} ."
        key = a if y == 1 else c
        out.append((s1, f"the {key} was {adj} .", y))
    return out


# ------------------------------------------------------------------------------ writers --------


def split3(rows, task):
    ntr, ndv, _ = sizes(task)
    return rows[:ntr], rows[ntr:ntr + ndv], rows[ntr + ndv:]


def bparse(s):
    return "( " + " ".join(s.split()) + " )"


def parse(s):
    return "(ROOT (S " + " ".join(f"(X {w})" for w in s.split()) + "))"


def main(out: Path = OUT):
    rng = random.Random(SEED)

    def R():
        return random.Random(rng.random())

    # CoLA: train/dev no header, 4 columns
    tr, dv, te = split3(gen_cola(R(), sum(sizes("cola"))), "cola")
    for name, rows in (("train", tr), ("dev", dv)):
        write(out / "CoLA" / f"{name}.tsv", None,
              [(f"syn{i % 7:02d}", y, "" if y else "*", s) for i, (s, y) in enumerate(rows)])
    write(out / "CoLA" / "test.tsv", ("index", "sentence"), [(i, s) for i, (s, _) in enumerate(te)])

    # SST-2
    tr, dv, te = split3(gen_sst2(R(), sum(sizes("sst2"))), "sst2")
    for name, rows in (("train", tr), ("dev", dv)):
        write(out / "SST-2" / f"{name}.tsv", ("sentence", "label"), rows)
    write(out / "SST-2" / "test.tsv", ("index", "sentence"),
          [(i, s) for i, (s, _) in enumerate(te)])

    # MRPC: BOM on train
    r = R()
    tr, dv, te = split3(gen_mrpc(r, sum(sizes("mrpc"))), "mrpc")
    hdr = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
    for name, rows in (("train", tr), ("dev", dv)):
        write(out / "MRPC" / f"{name}.tsv", hdr,
              [(y, r.randint(10000, 999999), r.randint(10000, 999999), a, b) for a, b, y in rows],
              bom=(name == "train"))
    write(out / "MRPC" / "test.tsv", ("index",) + hdr[1:],
          [(i, r.randint(10000, 999999), r.randint(10000, 999999), a, b)
           for i, (a, b, _) in enumerate(te)])

    # QQP: one question broken by a newline -> 2 malformed lines in train
    r = R()
    tr, dv, te = split3(gen_qqp(r, sum(sizes("qqp"))), "qqp")
    hdr = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    for name, rows in (("train", tr), ("dev", dv)):
        lines = [(1000 + i, 2 * i + 1, 2 * i + 2, a, b, y) for i, (a, b, y) in enumerate(rows)]
        if name == "train":
            broken = (99999, 88887, 88888, "how do i fix my\nbroken lamp ?", "why ?", 0)
            lines.insert(37, broken)  # written as two lines with 4 and 3 fields
        write(out / "QQP" / f"{name}.tsv", hdr, lines)
    write(out / "QQP" / "test.tsv", ("id", "question1", "question2"),
          [(i, a, b) for i, (a, b, _) in enumerate(te)])

    # STS-B: 10 columns, score last
    r = R()
    tr, dv, te = split3(gen_stsb(r, sum(sizes("stsb"))), "stsb")
    hdr = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
           "sentence1", "sentence2", "score")
    for name, rows in (("train", tr), ("dev", dv)):
        write(out / "STS-B" / f"{name}.tsv", hdr,
              [(i, "main-synthetic", "syn", "2024", i, "none", "none", a, b, f"{y:.3f}")
               for i, (a, b, y) in enumerate(rows)])
    write(out / "STS-B" / "test.tsv", hdr[:-1],
          [(i, "main-synthetic", "syn", "2024", i, "none", "none", a, b)
           for i, (a, b, _) in enumerate(te)])

    # MNLI: parse columns, string labels, gold label last; matched / mismatched
    r = R()
    ntr, ndv, nte = sizes("mnli")
    rows = gen_nli3(r, ntr + 2 * ndv + 2 * nte)
    parts = {
        "train": (rows[:ntr], MATCHED_GENRES),
        "dev_matched": (rows[ntr:ntr + ndv], MATCHED_GENRES),
        "dev_mismatched": (rows[ntr + ndv:ntr + 2 * ndv], MISMATCHED_GENRES),
        "test_matched": (rows[ntr + 2 * ndv:ntr + 2 * ndv + nte], MATCHED_GENRES),
        "test_mismatched": (rows[ntr + 2 * ndv + nte:], MISMATCHED_GENRES),
    }
    base = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
            "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
            "sentence2")
    for name, (rs, genres) in parts.items():
        if name == "train":
            extra = ("label1", "gold_label")
        elif name.startswith("dev"):
            extra = ("label1", "label2", "label3", "label4", "label5", "gold_label")
        else:
            extra = ()
        lines = []
        for i, (p, h, y) in enumerate(rs):
            row = [i, 5000 + i, f"{5000 + i}e", r.choice(genres), bparse(p), bparse(h), parse(p),
                   parse(h), p, h]
            if extra:
                row += [NLI3[y]] * (len(extra) - 1) + [NLI3[y]]
            lines.append(row)
        write(out / "MNLI" / f"{name}.tsv", base + extra, lines)

    # QNLI, RTE (string labels), WNLI (0/1)
    for task, folder, gen, names in (
        ("qnli", "QNLI", gen_qnli, ("entailment", "not_entailment")),
        ("rte", "RTE", gen_rte, ("entailment", "not_entailment")),
        ("wnli", "WNLI", gen_wnli, None),
    ):
        tr, dv, te = split3(gen(R(), sum(sizes(task))), task)
        cols = ("question", "sentence") if task == "qnli" else ("sentence1", "sentence2")
        for name, rows in (("train", tr), ("dev", dv)):
            write(out / folder / f"{name}.tsv", ("index",) + cols + ("label",),
                  [(i, a, b, names[y] if names else y) for i, (a, b, y) in enumerate(rows)])
        write(out / folder / "test.tsv", ("index",) + cols,
              [(i, a, b) for i, (a, b, _) in enumerate(te)])

    # AX (diagnostic): test only
    ax = gen_nli3(R(), 50)
    write(out / "diagnostic" / "diagnostic.tsv", ("index", "sentence1", "sentence2"),
          [(i, p, h) for i, (p, h, _) in enumerate(ax)])
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
