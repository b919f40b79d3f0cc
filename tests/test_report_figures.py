"""The report's figures tested by value: the plotted data read back from the Axes (bars, published
markers, intervals, differences against scipy), the task order against the table's, "no runs" where a
row has no score, and the legend's box against the title's with a renderer."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from scipy import stats

from reporting import figures
from tests.test_report import MRPC_LORA, MRPC_SYM, RTE_LORA, RTE_SYM, report, tree, write_run  # noqa: F401


@pytest.fixture
def saved(monkeypatch):
    out = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out_dir, stem: out.setdefault(stem, fig) and [])
    yield out
    plt.close("all")


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() != 0]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_bars_follow_the_table_and_read_back(tree, saved):  # noqa: F811
    res = report(tree, preset="symlora_table1", submission=False)["symlora_table1"]
    ax = saved["symlora_table1_bars"].axes[0]
    ticks = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    table = [t for t in res.display["Task"]]
    assert ticks == [t for t in table if t in ticks] and ticks[0] == "CoLA"  # the table's order
    # RTE: SymLoRA's bar is the mean of its four scored seeds, LoRA's the mean of its five
    heights = sorted(round(b.get_height(), 6) for b in _bars(ax))
    assert round(100 * np.mean(RTE_SYM), 6) in heights and round(100 * np.mean(RTE_LORA), 6) in heights
    # published: hollow diamonds, not the colour or shape of the interval caps
    pub = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert pub and all(np.allclose(c.get_facecolor()[0], [1, 1, 1, 1]) for c in pub)
    assert 85.0 in np.round(np.concatenate([c.get_offsets()[:, 1] for c in pub]), 6)  # SymLoRA RTE, paper


def test_missing_values_draw_no_bar_and_say_no_runs(tmp_path, saved):
    for s, v in enumerate(RTE_SYM):
        write_run(tmp_path, "rte", "symlora", s, v, grid="symlora_table1")
    for s, v in enumerate(MRPC_LORA):
        write_run(tmp_path, "mrpc", "lora", s, v, grid="symlora_table1")
    report(tmp_path, preset="symlora_table1", submission=False)
    ax = saved["symlora_table1_bars"].axes[0]
    assert len(_bars(ax)) == 2  # SymLoRA on RTE, LoRA on MRPC: no zero-height bars elsewhere
    assert sum(t.get_text() == "no runs" for t in ax.texts) == 2 * 9 - 2


def test_legend_never_covers_the_title(tree, saved):  # noqa: F811
    report(tree, preset="delora_table1", submission=False)
    fig = saved["delora_table1_bars"]
    ax = fig.axes[0]
    assert len(fig.legends[0].get_texts()) >= 5
    renderer = fig.canvas.get_renderer()
    legend, title = fig.legends[0].get_window_extent(renderer), ax.title.get_window_extent(renderer)
    assert not _overlap(legend, title) and not _overlap(legend, ax.get_window_extent(renderer))


def test_differences_to_lora_with_welchs_interval(tree, saved):  # noqa: F811
    report(tree, preset="symlora_table1", submission=False)
    fig = saved["symlora_table1_differences"]
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    line = ax.lines[0]  # SymLoRA's points (errorbar's data line)
    x, y = line.get_xdata(), line.get_ydata()
    ref = stats.ttest_ind(RTE_SYM, RTE_LORA, equal_var=False)
    ci = ref.confidence_interval()
    rte = ticks.index("RTE")
    i = int(np.argmin(abs(np.asarray(x) - rte)))
    assert y[i] == pytest.approx(100 * (np.mean(RTE_SYM) - np.mean(RTE_LORA)))
    segments = ax.collections[0].get_segments()  # the error bars, one per plotted point
    lo, hi = sorted(segments[i][:, 1])
    assert (lo, hi) == (pytest.approx(100 * ci.low), pytest.approx(100 * ci.high))
    mrpc = ticks.index("MRPC")
    j = int(np.argmin(abs(np.asarray(x) - mrpc)))
    assert y[j] == pytest.approx(100 * (np.mean(MRPC_SYM) - np.mean(MRPC_LORA[:4])))
    assert ax.get_ylabel() == "difference to LoRA validation (points)"


def test_median_difference_interval_is_a_seeded_bootstrap():
    from reporting.statistics import difference_interval

    a, b = [0.80, 0.82, 0.84, 0.86, 0.88], [0.70, 0.72, 0.71, 0.73, 0.69]
    d, lo, hi = difference_interval(a, b, "median", n_boot=4000, seed=1)
    rng = np.random.default_rng(1)
    bx = np.median(rng.choice(a, (4000, 5)), axis=1)
    by = np.median(rng.choice(b, (4000, 5)), axis=1)
    assert d == pytest.approx(0.13) and (lo, hi) == tuple(pytest.approx(q) for q in np.quantile(bx - by, [0.025, 0.975]))
    assert difference_interval([0.9, 0.9], [0.8, 0.8]) == (pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.1))
    assert math.isnan(difference_interval([0.9], [0.8, 0.7])[1])


def test_every_row_has_its_colour_in_the_legend(tree, saved):  # noqa: F811
    res = report(tree, preset="delora_table1", submission=False)["delora_table1"]
    fig = saved["delora_table1_bars"]
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    rows = list(dict.fromkeys(res.long[res.long["split"] == "validation"]["row"]))
    assert labels == rows + ["published"]
    colours = [tuple(h.get_facecolor()) for h in legend.legend_handles[:len(rows)]]
    assert len(set(colours)) == len(rows)  # Full FT, BitFit, ... each its own, runs or not
