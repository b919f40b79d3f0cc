"""The grid file: a search space, expanded into groups of runs.

A grid (``configs/grid/<name>.yaml``, chosen with ``grid=<name>``) holds only the search space::

    name: smoke                  # results go to <results_dir>/sweeps/<name>/
    experiment: quickstart       # the protocol (configs/experiment/), the first override of every run
    overrides: [epochs=1]        # further train.py overrides every run gets (model, ...)
    method_overrides: {}         # {method: [overrides]} for one method only
    tasks: [mnli, rte]
    methods: [lora, symlora]     # adapter=<method>
    ranks: null                  # null: the adapter's rank; [8, 16]; or {method: [ranks]}
    lr: [1.0e-3, 3.0e-3]         # null: the task file's lr (the LoRA paper's)
    batch_size: null             # null: the task file's batch size
    seeds: [0, 1]
    search_seeds: 1              # the search stage's seeds: the first n of ``seeds``, or a list

A *group* is one (task, method, rank): its candidate settings (lr x batch size) and seeds. A group
with more than one setting has a search stage (every setting on the search seeds); the chosen
setting is then replicated on every seed. A group with one setting only replicates.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

# Top-level keys of configs/sweep.yaml that belong to the sweep, not to a run: never passed to runs.
SWEEP_KEYS = ("grid", "dry_run", "retry_failed", "throughput", "gpus", "max_runs_per_wave", "max_pack_size")
# Keys the grid sets per run: passing them on the command line would be ambiguous.
GRID_KEYS = ("task", "adapter", "adapter.rank", "lr", "batch_size", "seed")
# What the grid key means on the train.py command line.
_HINT = {"task": "grid.tasks", "adapter": "grid.methods", "adapter.rank": "grid.ranks", "lr": "grid.lr",
         "batch_size": "grid.batch_size", "seed": "grid.seeds"}


class GridError(ValueError):
    """The grid or the command line cannot be turned into runs."""


@dataclass(frozen=True)
class Setting:
    """A candidate (lr, batch size); None means the task file's value."""
    lr: float | None
    batch_size: int | None

    def overrides(self) -> list[str]:
        out = []
        if self.lr is not None:
            out.append(f"lr={self.lr!r}")
        if self.batch_size is not None:
            out.append(f"batch_size={self.batch_size}")
        return out


@dataclass(frozen=True)
class Group:
    """One (task, method, rank) of the grid with the overrides every run of it shares."""
    task: str
    method: str
    rank: int | None                     # the grid's rank, None: the adapter config's
    base: tuple[str, ...]                # overrides shared by all its runs (no lr/batch_size/seed)
    settings: tuple[Setting, ...]
    seeds: tuple[int, ...]
    search_seeds: tuple[int, ...]
    auxiliary: bool = False              # added as another group's MNLI dependency, not in the grid

    @property
    def key(self) -> tuple[str, str, int | None, tuple[str, ...]]:
        return (self.task, self.method, self.rank, tuple(sorted(self.base)))

    @property
    def has_search(self) -> bool:
        return len(self.settings) > 1

    def label(self) -> str:
        rank = f" r={self.rank}" if self.rank is not None else ""
        return f"{self.task}/{self.method}{rank}"


@dataclass(frozen=True)
class Grid:
    name: str
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    ranks: dict[str, tuple[int | None, ...]]
    settings: tuple[Setting, ...]
    seeds: tuple[int, ...]
    search_seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()     # experiment=<the grid's experiment> first, when it has one
    method_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    experiment: str | None = None


def _as_list(value: Any) -> list:
    if value is None:
        return [None]
    if isinstance(value, (list, tuple, ListConfig)):
        return list(value)
    return [value]


def load_grid(node: DictConfig | dict) -> Grid:
    """A Grid from the ``grid`` node of the sweep config (or a plain dict)."""
    if node is None:
        raise GridError("no grid chosen: python sweep.py grid=<name> (one of configs/grid/*.yaml)")
    g = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    missing = [k for k in ("name", "tasks", "methods", "seeds") if not g.get(k)]
    if missing:
        raise GridError(f"grid {g.get('name', '?')!r} lacks {', '.join(missing)}")
    methods = tuple(str(m) for m in _as_list(g["methods"]))
    ranks_cfg = g.get("ranks")
    if isinstance(ranks_cfg, dict):
        unknown = set(ranks_cfg) - set(methods)
        if unknown:
            raise GridError(f"grid.ranks names methods not in grid.methods: {sorted(unknown)}")
        ranks = {m: tuple(None if r is None else int(r) for r in _as_list(ranks_cfg.get(m)))
                 for m in methods}
    else:
        ranks = {m: tuple(None if r is None else int(r) for r in _as_list(ranks_cfg)) for m in methods}
    lrs = [None if v is None else float(v) for v in _as_list(g.get("lr"))]
    sizes = [None if v is None else int(v) for v in _as_list(g.get("batch_size"))]
    settings = tuple(dict.fromkeys(Setting(lr, bs) for lr, bs in itertools.product(lrs, sizes)))
    seeds = tuple(dict.fromkeys(int(s) for s in _as_list(g["seeds"])))
    search = g.get("search_seeds")
    if search is None:
        search_seeds = seeds
    elif isinstance(search, int):
        if search < 1:
            raise GridError("grid.search_seeds must be >= 1 (or a list of seeds)")
        search_seeds = seeds[:search]
    else:
        search_seeds = tuple(int(s) for s in search)
        if not set(search_seeds) <= set(seeds):
            raise GridError(f"grid.search_seeds {list(search_seeds)} must be among grid.seeds {list(seeds)}")
    method_overrides = {str(k): tuple(str(o) for o in (v or ())) for k, v in
                        (g.get("method_overrides") or {}).items()}
    overrides = tuple(str(o) for o in (g.get("overrides") or ()))
    # the protocol has one home, the grid's experiment key, which the report reads too (reporting/presets.py)
    if any(override_key(o) == "experiment" for o in overrides):
        raise GridError(f"grid {g['name']!r}: overrides name experiment=...; the grid's protocol is its "
                        "experiment key (experiment: <name of configs/experiment/*.yaml>)")
    experiment = g.get("experiment")
    return Grid(name=str(g["name"]), tasks=tuple(str(t) for t in _as_list(g["tasks"])), methods=methods,
                ranks=ranks, settings=settings, seeds=seeds, search_seeds=search_seeds,
                overrides=((f"experiment={experiment}",) if experiment else ()) + overrides,
                method_overrides=method_overrides, experiment=None if experiment is None else str(experiment))


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``; ``~x`` -> ``x``; ``hydra/launcher=x`` -> ``hydra/launcher``."""
    key = override.split("=", 1)[0]
    return key.lstrip("+~").split("@", 1)[0]


def _root(key: str) -> str:
    return key.split(".", 1)[0].split("/", 1)[0]


def passthrough(overrides: Iterable[str]) -> list[str]:
    """The sweep's command-line overrides that every run gets (the sweep's own keys removed).

    A grid dimension on the command line (``task=``, ``seed=``, ...) is an error: say it in the grid
    (``grid.seeds=[0,1,2]``) instead."""
    out = []
    for o in overrides:
        key = override_key(o)
        if _root(key) in SWEEP_KEYS or key.startswith("hydra"):
            continue
        if key in GRID_KEYS:
            raise GridError(f"{o!r}: the grid sets {key} for every run; override {_HINT[key]} instead "
                            f"(e.g. {_HINT[key]}=[...])")
        out.append(o)
    return out


def merge_overrides(*lists: Sequence[str]) -> list[str]:
    """Concatenate, a later override of the same key replacing an earlier one (in its place)."""
    merged: dict[str, str] = {}
    for lst in lists:
        for o in lst:
            merged[override_key(o)] = o
    return list(merged.values())


def groups(grid: Grid, passthrough_overrides: Sequence[str] = ()) -> list[Group]:
    """The grid's (task, method, rank) groups in grid order (MNLI dependencies are added later)."""
    out = []
    for task, method in itertools.product(grid.tasks, grid.methods):
        for rank in grid.ranks[method]:
            dims = [f"grid_name={grid.name}", f"task={task}", f"adapter={method}"] + ([f"adapter.rank={rank}"] if rank is not None else [])
            base = merge_overrides(grid.overrides, grid.method_overrides.get(method, ()),
                                   passthrough_overrides, dims)
            out.append(Group(task=task, method=method, rank=rank, base=tuple(base), settings=grid.settings,
                             seeds=grid.seeds, search_seeds=grid.search_seeds))
    return out
