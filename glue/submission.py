"""GLUE server submission files and validation-prediction files.

Server files: ``<stem>.tsv`` with the header ``index<TAB>prediction``, one row per test example in
the test file's order (ascending ``idx``).  Predictions: MNLI-m, MNLI-mm, AX ->
``entailment|neutral|contradiction``; QNLI, RTE -> ``entailment|not_entailment``; CoLA, SST-2, MRPC,
QQP, WNLI -> ``0|1``; STS-B -> float clipped to [0, 5] with three decimals.

The server takes a zip of all 11 files, each with one row per row of the official test set
(``glue.tasks.SERVER_FILES``).  :func:`make_submission_zip` checks every file against that
(:func:`check_submission`) and refuses a zip the server would reject, naming each file, what it
holds and what the server expects; ``partial=True`` writes it anyway, for a dry run.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .metrics import to_predictions
from .tasks import SERVER_FILES, TASKS, TaskSpec, get_task

__all__ = [
    "SUBMISSION_FILES",
    "FileCheck",
    "SubmissionError",
    "check_submission",
    "check_file",
    "write_zip",
    "submission_filename",
    "write_predictions",
    "write_validation_predictions",
    "validation_filename",
    "read_predictions",
    "make_submission_zip",
    "encode_predictions",
    "decode_predictions",
]

log = logging.getLogger(__name__)

#: the 11 files of a GLUE server submission
SUBMISSION_FILES: tuple[str, ...] = tuple(SERVER_FILES)
_STEM_TO_TASK = {stem: t.name for t in TASKS.values() for _, stem in t.test_splits}


def submission_filename(task: str | TaskSpec, split: str) -> str:
    """``"RTE.tsv"``, ``"MNLI-m.tsv"`` ... for a Hub test split name."""
    return get_task(task).submission_stem(split) + ".tsv"


def validation_filename(task: str | TaskSpec, split: str) -> str:
    """``"validation.tsv"``, ``"validation_matched.tsv"`` ... (the Hub split name + .tsv)."""
    spec = get_task(task)
    spec.eval_suffix(split)  # validates
    return f"{split}.tsv"


def encode_predictions(task: str | TaskSpec, predictions) -> list[str]:
    """Predictions (ids, scores or logits) as the strings the GLUE server expects."""
    spec = get_task(task)
    p = to_predictions(spec, predictions)
    if spec.is_regression:
        return [f"{x:.3f}" for x in np.clip(p, 0.0, 5.0)]
    if p.size and (p.min() < 0 or p.max() >= spec.num_labels):
        bad = p[(p < 0) | (p >= spec.num_labels)][0]
        raise ValueError(f"{spec.name}: prediction {bad} outside 0..{spec.num_labels - 1}")
    if spec.submission_labels:
        return [spec.submission_labels[i] for i in p]
    return [str(int(i)) for i in p]


def decode_predictions(task: str | TaskSpec, values: Sequence[str]) -> np.ndarray:
    """Inverse of :func:`encode_predictions`: label ids (int64) or scores (float64)."""
    spec = get_task(task)
    if spec.is_regression:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    if spec.submission_labels:
        lookup = {s: i for i, s in enumerate(spec.submission_labels)}
    else:
        lookup = {str(i): i for i in range(spec.num_labels)}
    try:
        return np.asarray([lookup[str(v).strip()] for v in values], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"{spec.name}: unknown prediction {err.args[0]!r}") from None


def _sorted(idx, *cols):
    idx = np.asarray(idx).astype(np.int64)
    if idx.ndim != 1:
        raise ValueError(f"idx must be 1-D, got shape {idx.shape}")
    for c in cols:
        if len(c) != len(idx):
            raise ValueError(f"{len(idx)} indices but {len(c)} predictions/labels")
    if len(np.unique(idx)) != len(idx):
        raise ValueError("duplicate idx values")
    order = np.argsort(idx, kind="stable")
    return idx[order], [[c[i] for i in order] for c in cols]


def _write_tsv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join(str(v) for v in row) + "\n")
    os.replace(tmp, path)
    return path


def write_predictions(
    task: str | TaskSpec, split: str, idx, predictions, out_dir: str | os.PathLike
) -> Path:
    """Write the GLUE server file of a test split (``<out_dir>/RTE.tsv``, ``MNLI-m.tsv`` ...).

    ``idx`` are the test split's ``idx`` values; rows are written in ascending ``idx`` (the test
    file's order).  ``predictions``: class ids, STS-B scores, or logits.  Returns the path.
    """
    spec = get_task(task)
    name = submission_filename(spec, split)
    encoded = encode_predictions(spec, predictions)
    idx, (encoded,) = _sorted(idx, encoded)
    return _write_tsv(Path(out_dir) / name, ("index", "prediction"), zip(idx.tolist(), encoded))


def write_validation_predictions(
    task: str | TaskSpec, split: str, idx, predictions, labels, out_dir: str | os.PathLike
) -> Path:
    """Write ``<out_dir>/validation.tsv`` (MNLI: ``validation_matched.tsv`` ...) with the header
    ``index<TAB>prediction<TAB>label``, both columns encoded as in the server files."""
    spec = get_task(task)
    name = validation_filename(spec, split)
    pred_s = encode_predictions(spec, predictions)
    lab = np.asarray(labels)
    if spec.is_regression:
        lab_s = [f"{float(x):.3f}" for x in lab]  # labels are not clipped (already in [0, 5])
    else:
        lab_s = encode_predictions(spec, lab.astype(np.int64))
    idx, (pred_s, lab_s) = _sorted(idx, pred_s, lab_s)
    return _write_tsv(
        Path(out_dir) / name, ("index", "prediction", "label"), zip(idx.tolist(), pred_s, lab_s)
    )


def read_predictions(path: str | os.PathLike, task: str | TaskSpec | None = None, decode=True):
    """Read a server or validation prediction file into a pandas DataFrame with columns
    ``index`` (int), ``prediction`` (and ``label`` for validation files).

    With ``decode`` and a known task (given, or inferred from a server file name such as
    ``MNLI-m.tsv``), ``prediction``/``label`` are label ids (int) or STS-B floats; otherwise the raw
    strings.
    """
    import csv

    import pandas as pd

    path = Path(path)
    df = pd.read_csv(
        path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
    )
    if list(df.columns[:2]) != ["index", "prediction"]:
        raise ValueError(
            f"{path}: expected the header 'index\\tprediction', got {list(df.columns)}"
        )
    df["index"] = df["index"].astype(np.int64)
    if task is None:
        task = _STEM_TO_TASK.get(path.stem)
    if decode and task is not None:
        df["prediction"] = decode_predictions(task, df["prediction"].tolist())
        if "label" in df.columns:
            df["label"] = decode_predictions(task, df["label"].tolist())
    return df


@dataclass(frozen=True)
class FileCheck:
    """One file of a submission against what the GLUE server expects of it.

    ``rows``: the prediction rows the file holds (None when it is missing or unreadable);
    ``problem``: why the server would reject it, None when it would take it.
    """

    name: str
    path: Path | None
    rows: int | None
    expected: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        what = f"{Path(self.name).stem} test set"
        if self.ok:
            return f"{self.name}: {self.rows:,} rows, as the {what}"
        return f"{self.name}: {self.problem}; the GLUE server expects {self.expected:,} rows (the {what})"


class SubmissionError(ValueError):
    """The GLUE server would reject the submission; ``checks`` are the files it would reject."""

    def __init__(self, checks: Sequence[FileCheck]):
        self.checks = list(checks)
        super().__init__("the GLUE server would reject this submission:\n"
                         + "\n".join(f"  {c}" for c in self.checks))


def check_file(path: str | os.PathLike) -> FileCheck:
    """Check one server file (``RTE.tsv`` ...): the header, one row per row of the official test
    set, each index once, each prediction a value the server knows."""
    path = Path(path)
    expected = SERVER_FILES[path.name]
    try:
        df = read_predictions(path, task=expected.task)
    except (OSError, ValueError) as err:
        return FileCheck(expected.name, path, None, expected.rows, f"unreadable ({err})")
    rows = len(df)
    if rows != expected.rows:
        plural = "" if rows == 1 else "s"
        return FileCheck(expected.name, path, rows, expected.rows, f"holds {rows:,} row{plural}")
    if df["index"].duplicated().any():
        dup = int(df["index"][df["index"].duplicated()].iloc[0])
        return FileCheck(expected.name, path, rows, expected.rows, f"index {dup} occurs twice")
    return FileCheck(expected.name, path, rows, expected.rows)


def _named_paths(files: Iterable[str | os.PathLike] | str | os.PathLike) -> dict[str, Path]:
    """Server file name -> path, from paths of server files or a folder holding them."""
    if isinstance(files, (str, os.PathLike)) and Path(files).is_dir():
        paths = [Path(files) / n for n in SUBMISSION_FILES if (Path(files) / n).is_file()]
    else:
        paths = [Path(f) for f in files]  # type: ignore[union-attr]
    names = [p.name for p in paths]
    unknown = [n for n in names if n not in SUBMISSION_FILES]
    if unknown:
        raise ValueError(f"not GLUE submission files: {unknown}; expected {list(SUBMISSION_FILES)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate submission files: {dup}")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"submission file not found: {p}")
    return dict(zip(names, paths))


def check_submission(files: Iterable[str | os.PathLike] | str | os.PathLike) -> list[FileCheck]:
    """Every file the GLUE server requires (AX included), checked: one :class:`FileCheck` per
    file of :data:`SUBMISSION_FILES`, a missing one with the problem ``missing``.

    ``files``: paths of server files, or a folder holding them."""
    paths = _named_paths(files)
    return [check_file(paths[n]) if n in paths else
            FileCheck(n, None, None, SERVER_FILES[n].rows, "missing")
            for n in SUBMISSION_FILES]


def make_submission_zip(
    files: Iterable[str | os.PathLike] | str | os.PathLike,
    zip_path: str | os.PathLike,
    partial: bool = False,
) -> Path:
    """Zip GLUE server files (at the zip's root) for upload, if the server would take them.

    ``files``: paths of server files, or a folder holding them; every name must be one of the 11
    :data:`SUBMISSION_FILES`.  When a file is missing or does not hold one row per official test
    row, raises :class:`SubmissionError` naming each such file, what it holds and what the server
    expects, and writes nothing; ``partial=True`` writes the files there are anyway (a dry run) and
    logs the same lines as warnings.
    """
    paths = _named_paths(files)
    rejected = [c for c in check_submission(list(paths.values())) if not c.ok]
    if rejected and not partial:
        raise SubmissionError(rejected)
    for c in rejected:
        log.warning("partial GLUE submission %s: %s", zip_path, c)
    return write_zip(list(paths.values()), zip_path)


def write_zip(files: Iterable[str | os.PathLike] | str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip GLUE server files as they are, unchecked (:func:`make_submission_zip` checks first)."""
    paths = _named_paths(files)
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(zip_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n in SUBMISSION_FILES:
            if n in paths:
                zf.write(paths[n], arcname=n)
    os.replace(tmp, zip_path)
    return zip_path
