"""The report's LaTeX: every paper table (and its comparison) compiles with pdflatex on a standard
article page whose preamble loads only booktabs, graphicx, amsmath, amssymb, rotating, pdflscape and
caption, and is MEASURED: each table writes its box width, the line width and the font size to the log
(reporttable lines), and every one must be set at >= 8 pt, unscaled, within the line, with no overfull
box. Skipped where pdflatex is missing (CI installs texlive-latex-base and texlive-latex-recommended)."""
from __future__ import annotations

import os
import re
import subprocess

import pandas as pd

from reporting.presets import PAPER_PRESETS
from reporting.tables import LATEX_PREAMBLE, latex_document, latex_escape, layout, to_latex
from tests.conftest import needs_pdflatex
from tests.test_report import report, test_scores, tree  # noqa: F401  (the synthetic results tree)

MEASURE = re.compile(r"reporttable (\S+) part (\d+): width=([\d.]+)pt linewidth=([\d.]+)pt font=([\d.]+)pt")


def compile_and_measure(tmp_path, stem: str, tables: list[str]) -> list[tuple[str, float, float, float]]:
    doc = tmp_path / f"{stem}.tex"
    doc.write_text(latex_document(tables))
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "max_print_line": "100000"})  # one log line per measurement
    log = (tmp_path / f"{stem}.log").read_text(errors="replace")
    assert out.returncode == 0, f"{stem}:\n" + out.stdout[-2000:]
    bad = [line for line in log.splitlines() if "Overfull" in line or "Float too large" in line]
    assert not bad, f"{stem} does not fit:\n" + "\n".join(bad)
    return [(m[1], float(m[3]), float(m[4]), float(m[5])) for m in MEASURE.finditer(log)]


def test_the_preamble_loads_only_the_allowed_packages():
    used = re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]*)\}", LATEX_PREAMBLE)
    assert set(used) <= {"booktabs", "graphicx", "amsmath", "amssymb", "rotating", "pdflscape", "caption"}
    assert r"\documentclass{article}" in LATEX_PREAMBLE  # 10 pt: \footnotesize is 8 pt


def test_a_wide_table_goes_landscape_then_splits_by_column_groups():
    narrow = pd.DataFrame({"Task": ["RTE"], "a: ours": ["80.0 ± 1.0"], "a: n": ["5 of 5"]})
    assert layout(narrow) == (False, [narrow])
    wide = pd.DataFrame({"Task": ["RTE"], **{f"g{i}: {c}": ["88.8 [80.0, 90.0] (93.8%)"] for i in range(6)
                                             for c in ("ours", "paper")}})
    landscape, parts = layout(wide)
    assert landscape and len(parts) > 1
    for part in parts:
        assert list(part.columns)[0] == "Task"  # row labels in every part
        groups = [c.split(": ")[0] for c in part.columns[1:]]
        assert all(groups.count(g) == 2 for g in groups)  # a group is never cut in two
    assert sum(len(p.columns) - 1 for p in parts) == len(wide.columns) - 1
    assert "(part 1 of" in to_latex(wide, caption="x")


def test_escapes_need_no_font_encoding():
    assert latex_escape("a<b>c|d\\") == r"a$<$b$>$c$|$d$\backslash$"
    assert latex_escape("92.0 ± 0.0†") == r"92.0 $\pm$ 0.0\textsuperscript{\dag}"


@needs_pdflatex
def test_every_paper_table_compiles_at_8pt_unscaled_within_the_line(tree, test_scores, tmp_path):  # noqa: F811
    report(tree, preset="papers", test_scores=str(test_scores), figures=False, submission=False)
    written = sorted(p for name in PAPER_PRESETS for p in (tree / "tables").glob(f"{name}*.tex"))
    assert len(written) >= len(PAPER_PRESETS)
    for tex in written:
        text = tex.read_text()
        assert text.isascii(), tex.name
        assert r"\resizebox" not in text and r"\scalebox" not in text and "\\caption{" in text
        measured = compile_and_measure(tmp_path, tex.stem, [text])
        assert measured, tex.name
        for label, width, linewidth, font in measured:
            assert font >= 8.0, (tex.name, label, font)
            assert width <= linewidth, (tex.name, label, width, linewidth)
        assert (tmp_path / f"{tex.stem}.pdf").stat().st_size > 1000
