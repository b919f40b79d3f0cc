"""Every run of a sweep with its state, from the grid and what is on disk -- a pure function of both.

States: ``done`` / ``failed`` (finished: metrics.json is there), ``todo`` (can be launched now),
``blocked`` (waits for an MNLI run or the MNLI choice), ``pending`` (a replication seed whose setting
the search has not chosen yet), ``error`` (launched in this sweep, ended without metrics.json).

The sweep (sweeping/cli.py) plans, launches every ``todo`` run as one wave, and plans again until nothing is left to
launch: MNLI and independent searches first, then their replications with the dependent searches,
then the dependent replications. A re-run of the same sweep plans the same runs (a run's identity
is its configuration) and launches only those without a finished metrics.json; failed runs come
back as ``todo`` (with ``rerun=true``) only with ``retry_failed``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from rundir import FINISHED, run_dir, setting_name

from .grid import Group
from .identity import Composer, Status, run_overrides, status
from .stages import REPLICATE, SEARCH, Choice, best_setting, mean


@dataclass
class PlannedRun:
    group: Group
    stage: str
    seed: int
    state: str
    setting_index: int | None          # None: pending (not chosen yet)
    cfg: DictConfig                    # resolved config (for pending/blocked runs: a stand-in)
    directory: Path | None = None      # None while its identity is unknown (MNLI choice pending)
    overrides: list[str] | None = None
    init_from: str | None = None
    reason: str | None = None
    score: float | None = None
    rerun: bool = False

    @property
    def key(self) -> tuple:
        return (self.group.key, self.setting_index, self.seed)

    @property
    def lr(self):
        return None if self.setting_index is None else self.cfg.lr

    @property
    def batch_size(self):
        return None if self.setting_index is None else self.cfg.batch_size

    @property
    def rank(self):
        return self.cfg.adapter.rank

    @property
    def setting(self) -> str | None:
        return setting_name(self.cfg) if self.directory is not None else None

    def label(self) -> str:
        if self.directory is not None:
            return f"{self.cfg.task.name}/{self.cfg.adapter.name}/{self.setting}/seed={self.seed}"
        setting = ""
        if self.setting_index is not None:
            setting = f" lr={self.cfg.lr:g} bs={self.cfg.batch_size}"
        return f"{self.group.label()}{setting} seed={self.seed}"


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)     # both stages (replicate repeats search seeds)
    choices: list[tuple[Group, Choice]] = field(default_factory=list)

    def unique(self) -> list[PlannedRun]:
        """Each run once (a search seed's run at the chosen setting is also a replication run)."""
        seen, out = set(), []
        for r in self.runs:
            if r.key not in seen:
                seen.add(r.key)
                out.append(r)
        return out

    def todo(self) -> list[PlannedRun]:
        return [r for r in self.unique() if r.state == "todo"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.unique():
            out[r.state] = out.get(r.state, 0) + 1
        return out


def make_plan(groups: list[Group], needs: dict[tuple, tuple], composer: Composer, *,
              retry_failed: bool = False, attempted: set[Path] | None = None,
              errors: dict[Path, str] | None = None,
              status_of: Callable[[Path], Status] = status) -> Plan:
    """The sweep as it stands. ``groups`` in dependency order (sweeping.dependencies.resolve);
    ``attempted``: run dirs launched in this sweep (not launched again); ``errors``: why the ones
    that ended without metrics.json did."""
    attempted, errors = attempted or set(), errors or {}
    plan = Plan()
    chosen: dict[tuple, Choice] = {}
    index: dict[tuple, PlannedRun] = {}

    def init_for(group: Group, seed: int) -> tuple[bool, str | None, str | None]:
        """(known, init_from dir, blocker) for ``group``'s run of ``seed``."""
        dep = needs.get(group.key)
        if dep is None:
            return True, None, None
        if dep not in chosen:
            return False, None, f"waits for the MNLI setting to be chosen ({dep[0]}/{dep[1]})"
        mnli = index.get((dep, chosen[dep].index, seed))
        if mnli is None or mnli.directory is None:
            return False, None, f"waits for the MNLI run of seed {seed}"
        if mnli.state != "done":
            return True, str(mnli.directory), f"waits for {mnli.directory} ({mnli.state})"
        return True, str(mnli.directory), None

    def planned(group: Group, stage: str, setting_index: int, seed: int) -> PlannedRun:
        existing = index.get((group.key, setting_index, seed))
        if existing is not None:  # the same run in the other stage
            return PlannedRun(**{**existing.__dict__, "stage": stage})
        s = group.settings[setting_index]
        known, init_from, blocker = init_for(group, seed)
        if not known:
            run = PlannedRun(group, stage, seed, "blocked", setting_index,
                             composer.config(group.base, s.lr, s.batch_size, seed), reason=blocker)
            index[run.key] = run
            return run
        cfg = composer.config(group.base, s.lr, s.batch_size, seed, init_from=init_from)
        directory = run_dir(cfg)
        st = status_of(directory)
        run = PlannedRun(group, stage, seed, st.state, setting_index, cfg, directory, init_from=init_from,
                         score=st.score())
        if st.state == "failed":
            run.reason = (st.metrics or {}).get("reason")
            if retry_failed and directory not in attempted:
                run.state, run.rerun = "todo", True
        elif st.state == "missing":
            if directory in attempted:
                run.state, run.reason = "error", errors.get(directory, "ended without metrics.json")
            elif blocker:
                run.state, run.reason = "blocked", blocker
            else:
                run.state = "todo"
        if run.state == "todo":
            run.overrides = run_overrides(group.base, s.lr, s.batch_size, seed, init_from, rerun=run.rerun)
        index[run.key] = run
        return run

    for group in groups:
        search = []
        if group.has_search:
            search = [planned(group, SEARCH, i, seed)
                      for i, seed in itertools.product(range(len(group.settings)), group.search_seeds)]
            plan.runs += search
        choice = choose(group, search)
        if choice is None:
            stand_in = composer.config(group.base, group.settings[0].lr, group.settings[0].batch_size)
            why = ("no search setting finished with a score" if search and all(
                r.state in FINISHED for r in search) else "waits for the search stage's choice")
            plan.runs += [PlannedRun(group, REPLICATE, seed, "pending", None, stand_in, reason=why)
                          for seed in group.seeds if seed not in group.search_seeds]
            continue
        replicate = [planned(group, REPLICATE, choice.index, seed) for seed in group.seeds]
        plan.runs += replicate
        if choice.source != SEARCH:  # the only setting: its score over every seed done so far
            scores = [r.score for r in replicate if r.score is not None]
            choice = Choice(choice.index, replicate[0].setting, replicate[0].cfg.lr,
                            replicate[0].cfg.batch_size, mean(scores), len(scores), choice.source,
                            replicate[0].rank)
        chosen[group.key] = choice
        plan.choices.append((group, choice))
    return plan


def choose(group: Group, search: list[PlannedRun]) -> Choice | None:
    """The group's choice, once its search has finished (None before, or when nothing is done)."""
    if not group.has_search:
        return Choice(0, None, None, None, None, 0, "only setting")
    if any(r.state not in FINISHED for r in search):
        return None
    by_setting: dict[int, list[PlannedRun]] = {}
    for r in search:
        by_setting.setdefault(r.setting_index, []).append(r)
    best = best_setting([[r.score for r in by_setting.get(i, [])] for i in range(len(group.settings))])
    if best is None:
        return None
    i, score, n = best
    run = by_setting[i][0]
    return Choice(i, run.setting, run.cfg.lr, run.cfg.batch_size, score, n, SEARCH, run.rank)
