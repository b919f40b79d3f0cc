"""Markdown, CSV and LaTeX writers. No tabulate/jinja2 needed: tiny formatters of our own.

The LaTeX compiles with pdflatex on a standard article page whose preamble loads booktabs (rules) and
pdflscape (a wide table on a landscape page); nothing is ever scaled: every table is set in
``\\footnotesize`` (8 pt in a 10 pt article), and a table too wide for a portrait page goes on a
landscape page, or is split by columns across several tables (the row labels repeated), as the papers
do. Every character is escaped or spelt for pdflatex in its default encoding (no U+2212; ``<``, ``>``,
``|`` and ``\\`` in math). Column names ``"<group>: <column>"`` become two header rows, the group
spanning its columns.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pandas as pd


def to_markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    body = [[str(v).replace("|", "\\|") for v in row] for row in df.astype(object).fillna("–").values.tolist()]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cols), sep] + [line(r) for r in body]) + "\n"


_LATEX_ESCAPE = {"\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "<": r"$<$", ">": r"$>$", "|": r"$|$"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "—": "---", "−": r"$-$", "α": r"$\alpha$",
                  "λ": r"$\lambda$", "Σ": r"$\Sigma$", "Λ": r"$\Lambda$", "≥": r"$\geq$", "≤": r"$\leq$",
                  "×": r"$\times$", "·": r"$\cdot$", "√": r"$\surd$", "→": r"$\to$", "‖": r"$\|$",
                  "…": r"\ldots{}", "’": "'", "‘": "`", "“": "``", "”": "''", "≈": r"$\approx$",
                  "⁻": r"$^{-}$", "¹": r"$^{1}$", "²": r"$^{2}$", "ᵀ": r"$^{T}$", "é": r"\'e", "ö": r"\"o",
                  "†": r"\textsuperscript{\dag}", "‡": r"\textsuperscript{\ddag}"}


def latex_escape(text: str) -> str:
    """Text -> pdflatex-safe text: specials escaped, known symbols spelt, any other non-ASCII
    character reduced to its ASCII base letter (or '?')."""
    out = []
    for ch in str(text):
        if ch in _LATEX_ESCAPE:
            out.append(_LATEX_ESCAPE[ch])
        elif ch in _LATEX_SYMBOLS:
            out.append(_LATEX_SYMBOLS[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(latex_escape(base) if base else "?")
    return "".join(out)


def _minus(cell) -> str:
    """A hyphen before a digit in a cell is a minus sign ("-1.2" -> "−1.2", typeset $-$)."""
    return re.sub(r"(?<![\w.])-(?=\d)", "−", str(cell))


def _header_rows(columns: list[str]) -> list[str]:
    """One header row, or two when columns are named "<group>: <column>" (booktabs \\cmidrule)."""
    split = [c.split(": ", 1) if ": " in c else ["", c] for c in columns]
    if not any(group for group, _ in split):
        return [" & ".join(latex_escape(c) for c in columns) + r" \\"]
    top, rules, i = [], [], 0
    while i < len(split):
        group = split[i][0]
        j = i
        while j + 1 < len(split) and split[j + 1][0] == group:
            j += 1
        width = j - i + 1
        if group:
            top.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}")
            rules.append(rf"\cmidrule(lr){{{i + 1}-{j + 1}}}")
        else:
            top += [""] * width
        i = j + 1
    return [" & ".join(top) + r" \\", " ".join(rules),
            " & ".join(latex_escape(name) for _, name in split) + r" \\"]


# Page geometry of a standard 10 pt article (letter or A4), in TeX points: the widths a table may take.
PORTRAIT_WIDTH = 345.0   # \textwidth
LANDSCAPE_WIDTH = 550.0  # \textheight, the line width on a pdflscape page
_CHAR_PT = 4.4           # a mean glyph width of Computer Modern at 8 pt (digits 4.25, space 2.7, "±" 6.2)
_COLSEP_PT = 4.0         # \tabcolsep
_FIT = 0.92              # the estimate is a mean: leave room for wide glyphs (a header of capitals)


def _text_width(text: str) -> float:
    return len(str(text)) * _CHAR_PT + 2 * _COLSEP_PT


def _units(columns: list[str], key: int) -> list[list[int]]:
    """Column indices after the ``key`` (row-label) columns, grouped: a "<group>: x" run stays together."""
    units: list[list[int]] = []
    for i in range(key, len(columns)):
        group = columns[i].split(": ", 1)[0] if ": " in columns[i] else None
        prev = columns[i - 1].split(": ", 1)[0] if i > key and ": " in columns[i - 1] else None
        if units and group is not None and group == prev:
            units[-1].append(i)
        else:
            units.append([i])
    return units


def _estimated_width(df: pd.DataFrame, cols: list[int]) -> float:
    """TeX points the columns ``cols`` take at 8 pt (cells, their header, and a group header)."""
    width = 0.0
    names = [str(c) for c in df.columns]
    for i in cols:
        cells = [names[i].split(": ", 1)[-1]] + [str(v) for v in df.iloc[:, i].astype(object).fillna("–")]
        width += max(_text_width(c) for c in cells)
    group = names[cols[0]].split(": ", 1)[0] if ": " in names[cols[0]] else ""
    return max(width, _text_width(group)) if group else width


def split_columns(df: pd.DataFrame, key: int, limit: float) -> list[pd.DataFrame]:
    """``df`` as one or more tables of at most ``limit`` points, each with the ``key`` columns first."""
    units = _units([str(c) for c in df.columns], key)
    base = _estimated_width(df, list(range(key))) if key else 0.0
    chunks: list[list[int]] = [[]]
    used = base
    for unit in units:
        w = _estimated_width(df, unit)
        if chunks[-1] and used + w > limit:
            chunks.append([])
            used = base
        chunks[-1] += unit
        used += w
    return [df.iloc[:, list(range(key)) + chunk] for chunk in chunks if chunk]


def layout(df: pd.DataFrame, key: int = 1) -> tuple[bool, list[pd.DataFrame]]:
    """(landscape, parts): portrait when the table fits the text width, else landscape, else split."""
    width = _estimated_width(df, list(range(len(df.columns))))
    if width <= _FIT * PORTRAIT_WIDTH:
        return False, [df]
    if width <= _FIT * LANDSCAPE_WIDTH:
        return True, [df]
    return True, split_columns(df, key, _FIT * LANDSCAPE_WIDTH)


def _tabular(df: pd.DataFrame) -> list[str]:
    columns = [str(c) for c in df.columns]
    align = "l" * min(len(columns), 1) + "r" * max(len(columns) - 1, 0)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", *_header_rows(columns), r"\midrule"]
    for row in df.astype(object).fillna("–").values.tolist():
        lines.append(" & ".join(latex_escape(_minus(v)) for v in row) + r" \\")
    return lines + [r"\bottomrule", r"\end{tabular}"]


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "", notes: list[str] | None = None,
             key: int = 1) -> str:
    """Booktabs table floats at 8 pt (\footnotesize), never scaled: portrait, landscape (pdflscape) or
    split by columns into parts "(part i of k)" that each fit a landscape page; ``notes`` follow the
    last part in small type. Each table reports its width and font size to the log (``reporttable``)."""
    landscape, parts = layout(df, key)
    out: list[str] = []
    for i, part in enumerate(parts, 1):
        lines = [r"\begin{landscape}"] if landscape else []
        lines += [r"\begin{table}[tbp]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{4pt}"]
        if caption:
            suffix = f" (part {i} of {len(parts)})" if len(parts) > 1 else ""
            lines.append(rf"\caption{{{latex_escape(caption + suffix)}}}")
        if label:
            lines.append(rf"\label{{{label}{'' if len(parts) == 1 else f'-{i}'}}}")
        lines += [r"\ifdefined\reporttablebox\else\newsavebox{\reporttablebox}\fi",
                  r"\begin{lrbox}{\reporttablebox}", *_tabular(part), r"\end{lrbox}",
                  r"\usebox{\reporttablebox}",
                  r"\typeout{reporttable " + (label or "table") + f" part {i}: width=\\the\\wd\\reporttablebox"
                  r"\space linewidth=\the\linewidth\space font=\csname f@size\endcsname pt}"]
        if notes and i == len(parts):
            lines += [r"\par\smallskip\begin{minipage}{\linewidth}\raggedright\sloppy",
                      # a path in a note may break after any slash (it has no spaces to break at)
                      "Notes. " + " ".join(latex_escape(n).replace("/", r"/\allowbreak{}") for n in notes),
                      r"\end{minipage}"]
        lines.append(r"\end{table}")
        if landscape:
            lines.append(r"\end{landscape}")
        out.append("\n".join(lines))
    return "\n".join(out) + "\n"


LATEX_PREAMBLE = r"""\documentclass{article}
\usepackage{booktabs}
\usepackage{graphicx}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage{rotating}
\usepackage{pdflscape}
\usepackage{caption}
"""


def latex_document(tables: list[str]) -> str:
    """A minimal article holding the given tables (what the compile test and a reader's check use)."""
    return LATEX_PREAMBLE + "\\begin{document}\n" + "\n\\clearpage\n".join(tables) + "\\end{document}\n"


def compact(display: pd.DataFrame) -> pd.DataFrame:
    """The LaTeX table: the display without the Δ columns / lines (ours − paper) and the metric column
    (both in the Markdown and CSV; captions name the metrics), so that it stays readable on a page."""
    keep = [c for c in display.columns if not str(c).endswith(": Δ") and str(c) not in ("Δ", "Metric")]
    out = display[keep]
    if "" in out.columns:
        out = out[out[""] != "Δ"]
    return out.reset_index(drop=True)


def write_tables(out_dir: Path, name: str, display: pd.DataFrame, long: pd.DataFrame, title: str,
                 notes: list[str], caption: str | None = None, latex: pd.DataFrame | None = None,
                 latex_notes: list[str] | None = None) -> dict[str, Path]:
    """DIR/tables/<name>.md (title, display table, notes), .csv (the long table, numbers in %), .tex
    (``latex``, by default the compact display, with ``caption``: what a paper keeps; the notes stay
    in the Markdown)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = f"## {title}\n\n" + to_markdown(display) + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
    paths = {"md": out_dir / f"{name}.md", "csv": out_dir / f"{name}.csv", "tex": out_dir / f"{name}.tex"}
    paths["md"].write_text(md)
    long.to_csv(paths["csv"], index=False)
    table = compact(display) if latex is None else latex
    key = 3 if list(table.columns[:3]) == ["Method", "Trainable", ""] else 1  # row labels repeat in each part
    paths["tex"].write_text(to_latex(table, caption=caption or title, label=f"tab:{name}", notes=latex_notes,
                                     key=key))
    return paths
