"""Markdown, CSV and LaTeX writers. No tabulate/jinja2 needed: tiny formatters of our own.

The LaTeX compiles with pdflatex and needs ``\\usepackage{booktabs}`` (rules) and
``\\usepackage{graphicx}`` (a table wider than the text is scaled to ``\\linewidth``) in the preamble.
Every character is escaped or spelt for pdflatex (no U+2212, ``<``/``>`` as \\textless/\\textgreater).
Column names ``"<group>: <column>"`` become two header rows, the group spanning its columns.
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


_LATEX_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
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


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs table float; scaled down to \\linewidth only when wider (measured by TeX itself)."""
    columns = [str(c) for c in df.columns]
    align = "l" * min(len(columns), 1) + "r" * max(len(columns) - 1, 0)
    lines = [r"\begin{table}[tbp]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{4pt}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [r"\ifdefined\reporttablebox\else\newsavebox{\reporttablebox}\fi",
              rf"\begin{{lrbox}}{{\reporttablebox}}\begin{{tabular}}{{{align}}}", r"\toprule",
              *_header_rows(columns), r"\midrule"]
    for row in df.astype(object).fillna("–").values.tolist():
        lines.append(" & ".join(latex_escape(_minus(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}\end{lrbox}",
              r"\ifdim\wd\reporttablebox>\linewidth\resizebox{\linewidth}{!}{\usebox{\reporttablebox}}"
              r"\else\usebox{\reporttablebox}\fi",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


LATEX_PREAMBLE = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage{graphicx}
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
                 notes: list[str], caption: str | None = None, latex: pd.DataFrame | None = None) -> dict[str, Path]:
    """DIR/tables/<name>.md (title, display table, notes), .csv (the long table, numbers in %), .tex
    (``latex``, by default the compact display, with ``caption``: what a paper keeps; the notes stay
    in the Markdown)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = f"## {title}\n\n" + to_markdown(display) + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
    paths = {"md": out_dir / f"{name}.md", "csv": out_dir / f"{name}.csv", "tex": out_dir / f"{name}.tex"}
    paths["md"].write_text(md)
    long.to_csv(paths["csv"], index=False)
    table = compact(display) if latex is None else latex
    paths["tex"].write_text(to_latex(table, caption=caption or title, label=f"tab:{name}"))
    return paths
