"""Load a GLUE task as a ``datasets.DatasetDict`` with the Hub's split names and columns.

Three sources, one interface (:func:`load_glue`):

* ``"hub"``      -- ``datasets.load_dataset("nyu-mll/glue", config)`` (honours ``HF_HUB_OFFLINE``
  and the cache; without network and without a cached copy it raises
  :class:`GlueDataUnavailableError` telling how to use a local folder:
  ``data=glue_dir data.dir=/path/to/glue_data``).
* ``"glue_dir"`` -- the original GLUE TSV files (``<dir>/RTE/train.tsv``, ``dev.tsv``, ``test.tsv``,
  ``MNLI/dev_matched.tsv``, ``diagnostic/diagnostic.tsv`` ...), read with tab as delimiter and no
  quote handling, every quirk of the download handled.
* ``"sample"``   -- the bundled synthetic sample (``data/sample/``, same layout as ``glue_dir``).

All three give the same columns: the task's text fields, ``label`` (ClassLabel ids; float32 for
STS-B; ``-1`` on test splits) and ``idx`` (int32; row number 0..n-1 in file order, for test files
the file's ``index``/``id`` column).

Malformed rows (QQP only: rows with too few fields) are skipped and counted.  What reading did is
on the record: :func:`split_records` gives per split a :class:`SplitRecord` (the file, the rows in
it, the rows read, the rows skipped and the line numbers of the first few); the Hub path reports
zero skipped.  The count is also logged as a warning, stored in ``dataset_dict.skipped_rows``
(``{split: count}``) and in each split's ``info.description`` (``"... skipped_malformed_rows=N"``);
:func:`skipped_rows` reads it back from either, so it survives ``.map``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .tasks import TaskSpec, get_task

__all__ = [
    "load_glue",
    "read_glue_tsv",
    "skipped_rows",
    "split_records",
    "SplitRecord",
    "features_for",
    "glue_file_path",
    "GlueDataUnavailableError",
    "SAMPLE_DIR",
    "HUB_DATASET",
    "SOURCES",
]

log = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"
SOURCES = ("hub", "glue_dir", "sample")
#: the bundled synthetic sample (repository checkout: <repo>/data/sample)
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"

GLUE_DIR_HINT = "data=glue_dir data.dir=/path/to/glue_data"


class GlueDataUnavailableError(ConnectionError):
    """The Hub could not be reached (offline, no network) and the dataset is not cached."""


#: how many skipped line numbers a record keeps (the count keeps counting)
MAX_SKIPPED_LINES = 10


@dataclass(frozen=True)
class SplitRecord:
    """What reading one split did.

    ``file``: the TSV read (``hf://datasets/nyu-mll/glue/<config>`` for the Hub); ``rows_in_file``:
    its data lines (header and blank lines not counted; a row broken by a newline is two lines, both
    skipped); ``rows_read``: the rows in the dataset; ``skipped_lines``: 1-based line numbers of the
    first :data:`MAX_SKIPPED_LINES` lines skipped.
    """

    file: str
    rows_in_file: int
    rows_read: int
    skipped_lines: tuple[int, ...] = ()

    @property
    def rows_skipped(self) -> int:
        return self.rows_in_file - self.rows_read

    def as_dict(self) -> dict:
        return {"file": self.file, "rows_in_file": self.rows_in_file, "rows_read": self.rows_read,
                "rows_skipped": self.rows_skipped, "skipped_lines": list(self.skipped_lines)}


# --------------------------------------------------------------------------------------------
# File layouts of the original GLUE download
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    header: str | None  # expected first field of the header line (lower case); None: no header
    text_cols: tuple[int, ...]
    label_col: int | None = None  # negative: counted from the end ("last column")
    idx_col: int | None = None  # test files: the index/id column
    min_fields: int = 0
    skip_malformed: bool = False  # QQP train/dev: skip rows with too few fields, count them
    label_name: str | None = None  # header name of the label column, if the header has it

    def required_fields(self) -> int:
        cols = list(self.text_cols)
        if self.label_col is not None and self.label_col >= 0:
            cols.append(self.label_col)
        if self.idx_col is not None:
            cols.append(self.idx_col)
        return max(max(cols) + 1 + (1 if self.label_col is not None and self.label_col < 0 else 0),
                   self.min_fields)


def _layouts(task: str) -> dict[str, _Layout]:
    """(kind -> layout), kind in train / dev / test."""
    if task == "cola":
        lab = _Layout(None, (3,), label_col=1, min_fields=4)
        return {"train": lab, "dev": lab, "test": _Layout("index", (1,), idx_col=0)}
    if task == "sst2":
        lab = _Layout("sentence", (0,), label_col=1)
        return {"train": lab, "dev": lab, "test": _Layout("index", (1,), idx_col=0)}
    if task == "mrpc":
        lab = _Layout("quality", (3, 4), label_col=0)
        return {"train": lab, "dev": lab, "test": _Layout("index", (3, 4), idx_col=0)}
    if task == "qqp":
        lab = _Layout("id", (3, 4), label_col=5, skip_malformed=True)
        return {"train": lab, "dev": lab, "test": _Layout("id", (1, 2), idx_col=0)}
    if task == "stsb":
        lab = _Layout("index", (7, 8), label_col=-1, min_fields=10, label_name="score")
        return {"train": lab, "dev": lab, "test": _Layout("index", (7, 8), idx_col=0)}
    if task == "mnli":
        lab = _Layout("index", (8, 9), label_col=-1, min_fields=11, label_name="gold_label")
        return {"train": lab, "dev": lab, "test": _Layout("index", (8, 9), idx_col=0)}
    if task in ("qnli", "rte", "wnli"):
        lab = _Layout("index", (1, 2), label_col=3)
        return {"train": lab, "dev": lab, "test": _Layout("index", (1, 2), idx_col=0)}
    if task == "ax":
        return {"test": _Layout("index", (1, 2), idx_col=0)}
    raise ValueError(task)


def _split_files(spec: TaskSpec) -> dict[str, tuple[str, tuple[str, ...]]]:
    """hub split -> (layout kind, candidate file names relative to <dir>/<glue_dir_name>)."""
    if spec.name == "ax":
        return {"test": ("test", ("diagnostic.tsv", "AX.tsv"))}
    if spec.name == "mnli":
        return {
            "train": ("train", ("train.tsv",)),
            "validation_matched": ("dev", ("dev_matched.tsv",)),
            "validation_mismatched": ("dev", ("dev_mismatched.tsv",)),
            "test_matched": ("test", ("test_matched.tsv",)),
            "test_mismatched": ("test", ("test_mismatched.tsv",)),
        }
    return {
        "train": ("train", ("train.tsv",)),
        "validation": ("dev", ("dev.tsv",)),
        "test": ("test", ("test.tsv",)),
    }


def glue_file_path(task: str | TaskSpec, split: str, data_dir: str | os.PathLike) -> Path:
    """Path of the GLUE TSV file of ``split`` (a Hub split name).  Raises FileNotFoundError naming
    the path(s) looked at and the expected layout."""
    spec = get_task(task)
    files = _split_files(spec)
    if split not in files:
        raise ValueError(f"{spec.name} has no split {split!r}; splits: {list(files)}")
    root = Path(data_dir).expanduser()
    candidates = [root / spec.glue_dir_name / f for f in files[split][1]]
    if spec.name == "ax":
        candidates.append(root / "AX.tsv")
    for c in candidates:
        if c.is_file():
            return c
    expected = " or ".join(str(c) for c in candidates)
    if not root.is_dir():
        raise FileNotFoundError(
            f"GLUE data folder not found: {root} (expected the GLUE layout: {expected})"
        )
    if not (root / spec.glue_dir_name).is_dir() and not any(c.is_file() for c in candidates):
        raise FileNotFoundError(
            f"task folder not found: {root / spec.glue_dir_name} "
            f"(expected the GLUE layout: {expected})"
        )
    raise FileNotFoundError(f"GLUE file not found: expected the GLUE layout: {expected}")


# --------------------------------------------------------------------------------------------
# Labels and features
# --------------------------------------------------------------------------------------------


def _label_map(spec: TaskSpec) -> dict[str, int] | None:
    """raw label string in the TSV -> Hub label id (None for STS-B: float)."""
    if spec.is_regression:
        return None
    # The files write labels as the GLUE server wants them: strings for MNLI, AX, QNLI and RTE,
    # the id itself (0/1, the Hub's ids) for CoLA, SST-2, MRPC, QQP and WNLI.
    names = spec.submission_labels or tuple(str(i) for i in range(spec.num_labels))
    return {name: i for i, name in enumerate(names)}


def features_for(task: str | TaskSpec):
    """The Hub's ``datasets.Features`` of a task (text fields, label, idx)."""
    import datasets

    spec = get_task(task)
    feats = {f: datasets.Value("string") for f in spec.text_fields}
    if spec.is_regression:
        feats["label"] = datasets.Value("float32")
    else:
        feats["label"] = datasets.ClassLabel(names=list(spec.label_names))
    feats["idx"] = datasets.Value("int32")
    return datasets.Features(feats)


# --------------------------------------------------------------------------------------------
# Reading one TSV file
# --------------------------------------------------------------------------------------------


def read_utf8(path: str | os.PathLike) -> str:
    """A text file's content (UTF-8, an optional byte-order mark); other bytes are a ValueError naming
    the file, line and byte."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise ValueError(f"{path}:{line}: byte {raw[error.start]:#04x} at column {column} is not UTF-8; "
                         "save the file as UTF-8") from None


def read_glue_tsv(
    task: str | TaskSpec, split: str, path: str | os.PathLike
) -> tuple[dict[str, list], SplitRecord]:
    """Read one GLUE TSV file into Hub-layout columns.

    Tab delimiter, no quote processing (a ``"`` is an ordinary character), UTF-8 with an optional
    byte-order mark.  Returns ``(columns, record)``; the record counts the malformed rows dropped
    (QQP train/dev only) and names their lines.  Raises ValueError naming the file and line of a
    row that cannot be parsed or whose label is outside the task's label set.
    """
    spec = get_task(task)
    kind = _split_files(spec)[split][0]
    layout = _layouts(spec.name)[kind]
    path = Path(path)
    need = layout.required_fields()
    labels = _label_map(spec)
    is_test = layout.label_col is None
    label_col = layout.label_col

    cols: dict[str, list] = {f: [] for f in spec.text_fields}
    cols["label"] = []
    cols["idx"] = []
    rows_in_file = 0
    skipped: list[int] = []  # line numbers
    text = read_utf8(path)
    lines = text.split("\n")
    start = 0
    if layout.header is not None:
        if not lines or not lines[0].strip():
            raise ValueError(f"{path}:1: empty file, expected a header line")
        first = lines[0].rstrip("\r").split("\t")[0].strip().lower()
        if first != layout.header:
            raise ValueError(
                f"{path}:1: expected a header line starting with {layout.header!r}, "
                f"found {lines[0][:80]!r}"
            )
        start = 1
        header = [h.strip().lower() for h in lines[0].rstrip("\r").split("\t")]
        if layout.label_name is not None and layout.label_name in header:
            # the label column by its header name (as the Hub's conversion read these files),
            # which is also the last column of a well-formed row
            label_col = header.index(layout.label_name)
            need = max(need, label_col + 1)
    for lineno0 in range(start, len(lines)):
        line = lines[lineno0].rstrip("\r")
        if not line.strip():
            continue  # blank line (usually the end of the file)
        rows_in_file += 1
        lineno = lineno0 + 1
        fields = line.split("\t")
        if len(fields) < need:
            if layout.skip_malformed:
                skipped.append(lineno)
                continue
            raise ValueError(
                f"{path}:{lineno}: cannot parse row: expected at least {need} tab-separated "
                f"fields, found {len(fields)}: {line[:120]!r}"
            )
        for name, c in zip(spec.text_fields, layout.text_cols):
            cols[name].append(fields[c])
        if is_test:
            raw_idx = fields[layout.idx_col].strip()
            try:
                cols["idx"].append(int(raw_idx))
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: cannot parse row: index {raw_idx!r} is not an integer"
                ) from None
            cols["label"].append(-1.0 if spec.is_regression else -1)
            continue
        raw = fields[label_col].strip()
        if labels is None:
            try:
                score = float(raw)
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: label {raw!r} is not a similarity score "
                    f"(a number in [0, 5]) for {spec.name}"
                ) from None
            if not 0.0 <= score <= 5.0:
                raise ValueError(
                    f"{path}:{lineno}: label {raw!r} outside the {spec.name} range [0, 5]"
                )
            cols["label"].append(score)
        else:
            if raw not in labels:
                raise ValueError(
                    f"{path}:{lineno}: label {raw!r} is not in the {spec.name} label set "
                    f"{sorted(labels)}"
                )
            cols["label"].append(labels[raw])
        cols["idx"].append(len(cols["idx"]))
    if skipped:
        shown = ", ".join(map(str, skipped[:MAX_SKIPPED_LINES]))
        log.warning("%s: skipped %d malformed row(s) (too few fields): line(s) %s%s", path,
                    len(skipped), shown, ", ..." if len(skipped) > MAX_SKIPPED_LINES else "")
    record = SplitRecord(str(path), rows_in_file, len(cols["idx"]), tuple(skipped[:MAX_SKIPPED_LINES]))
    return cols, record


# --------------------------------------------------------------------------------------------
# The one interface
# --------------------------------------------------------------------------------------------


def _load_dir(spec: TaskSpec, data_dir: Path, splits: Sequence[str] | None, source: str):
    import datasets

    files = _split_files(spec)
    wanted = list(files) if splits is None else list(splits)
    for s in wanted:
        if s not in files:
            raise ValueError(f"{spec.name} has no split {s!r}; splits: {list(files)}")
    feats = features_for(spec)
    out = datasets.DatasetDict()
    records: dict[str, SplitRecord] = {}
    for split in wanted:
        path = glue_file_path(spec, split, data_dir)
        cols, records[split] = read_glue_tsv(spec, split, path)
        info = datasets.DatasetInfo(
            description=(
                f"GLUE {spec.name} {split} read from {path} (source={source}); "
                f"skipped_malformed_rows={records[split].rows_skipped}"
            ),
            features=feats,
        )
        out[split] = datasets.Dataset.from_dict(
            cols, features=feats, info=info, split=datasets.NamedSplit(split)
        )
    out.records = records  # type: ignore[attr-defined]
    out.skipped_rows = {split: r.rows_skipped for split, r in records.items()}  # type: ignore[attr-defined]
    return out


def _load_hub(spec: TaskSpec, cache_dir, splits: Sequence[str] | None):
    import datasets

    try:
        dd = datasets.load_dataset(HUB_DATASET, spec.name, cache_dir=cache_dir)
    except Exception as err:  # offline, no network, not cached, Hub error ...
        offline = bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))
        raise GlueDataUnavailableError(
            f"could not load GLUE task {spec.name!r} from the Hugging Face Hub "
            f"({HUB_DATASET}, config {spec.name!r}"
            f"{', offline mode (HF_HUB_OFFLINE=1)' if offline else ''}"
            f"{f', cache_dir={cache_dir}' if cache_dir else ''}): {type(err).__name__}: {err}. "
            f"Without network access and without a cached copy, point the harness at a local "
            f"GLUE folder (the original GLUE download, e.g. glue_data/RTE/train.tsv) with: "
            f"{GLUE_DIR_HINT}"
        ) from err
    if splits is not None:
        missing = [s for s in splits if s not in dd]
        if missing:
            raise ValueError(f"{spec.name} has no split(s) {missing}; splits: {list(dd)}")
        dd = datasets.DatasetDict({s: dd[s] for s in splits})
    hub_file = f"hf://datasets/{HUB_DATASET}/{spec.name}"
    records = {s: SplitRecord(hub_file, len(ds), len(ds)) for s, ds in dd.items()}  # nothing skipped
    dd.records = records  # type: ignore[attr-defined]
    dd.skipped_rows = {s: 0 for s in dd}  # type: ignore[attr-defined]
    return dd


def load_glue(
    task: str | TaskSpec,
    source: str = "hub",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
):
    """Load a GLUE task as a ``datasets.DatasetDict`` in the Hub's layout.

    Args:
        task: Hub config name or GLUE spelling (``"rte"``, ``"SST-2"``).
        source: ``"hub"`` | ``"glue_dir"`` | ``"sample"``.
        data_dir: the GLUE folder (``glue_dir``; the folder holding ``RTE/``, ``MNLI/`` ...);
            for ``sample`` an optional replacement of the bundled folder.
        cache_dir: ``datasets`` cache folder (``hub`` only).
        splits: load only these Hub split names (default: all splits of the task).

    Returns:
        DatasetDict with the Hub's split names (``train``, ``validation``, ``test``; MNLI
        ``validation_matched`` ...; AX only ``test``) and columns (text fields, ``label``, ``idx``).
        ``result.skipped_rows`` is ``{split: malformed rows skipped}``; :func:`split_records`
        gives what reading each split did.
    """
    spec = get_task(task)
    if source == "hub":
        return _load_hub(spec, None if cache_dir is None else str(cache_dir), splits)
    if source == "glue_dir":
        if data_dir is None:
            raise ValueError(
                "source='glue_dir' needs data_dir, the folder of the GLUE download "
                f"(holding CoLA/, SST-2/, ...): {GLUE_DIR_HINT}"
            )
        return _load_dir(spec, Path(data_dir), splits, source)
    if source == "sample":
        return _load_dir(spec, Path(data_dir) if data_dir else SAMPLE_DIR, splits, source)
    raise ValueError(f"unknown data source {source!r}; expected one of {', '.join(SOURCES)}")


def split_records(dataset_dict) -> dict[str, SplitRecord]:
    """``{split: SplitRecord}`` of a DatasetDict returned by :func:`load_glue`: the file each split
    was read from, its rows, the rows read and the rows skipped with their line numbers."""
    records = getattr(dataset_dict, "records", None)
    if not isinstance(records, dict):
        raise ValueError("split_records needs the DatasetDict that load_glue returned "
                         "(its record does not survive .map)")
    return dict(records)


_SKIP_RE = re.compile(r"skipped_malformed_rows=(\d+)")


def skipped_rows(dataset_dict) -> dict[str, int]:
    """``{split: malformed rows skipped}`` of a DatasetDict returned by :func:`load_glue` (read
    from its ``skipped_rows`` attribute, else from each split's ``info.description``)."""
    counts = getattr(dataset_dict, "skipped_rows", None)
    if isinstance(counts, dict):
        return dict(counts)
    out = {}
    for split, ds in dataset_dict.items():
        m = _SKIP_RE.search(ds.info.description or "")
        out[split] = int(m.group(1)) if m else 0
    return out
