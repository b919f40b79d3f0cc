"""Markdown, CSV and LaTeX (booktabs) writers. No tabulate/jinja2 needed: tiny formatters of our own."""
from __future__ import annotations

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
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "Δ": r"$\Delta$", "–": "--", "α": r"$\alpha$", "≥": r"$\geq$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_ESCAPE.get(ch, ch) for ch in str(text))
    for k, v in _LATEX_SYMBOLS.items():
        out = out.replace(k, v)
    return out


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    align = "l" * min(len(df.columns), 1) + "r" * max(len(df.columns) - 1, 0)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    for row in df.astype(object).fillna("–").values.tolist():
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_tables(out_dir: Path, name: str, display: pd.DataFrame, long: pd.DataFrame, title: str,
                 notes: list[str]) -> dict[str, Path]:
    """DIR/tables/<name>.md (title, display table, notes), .csv (the long table, numbers in %), .tex."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = f"## {title}\n\n" + to_markdown(display) + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")
    paths = {"md": out_dir / f"{name}.md", "csv": out_dir / f"{name}.csv", "tex": out_dir / f"{name}.tex"}
    paths["md"].write_text(md)
    long.to_csv(paths["csv"], index=False)
    paths["tex"].write_text(to_latex(display, caption=title + (". " + " ".join(notes) if notes else ""),
                                     label=f"tab:{name}"))
    return paths
