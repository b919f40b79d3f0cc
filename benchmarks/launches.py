"""Counting the kernel-launching operators of a piece of code (a training step), device-independent.

A `TorchDispatchMode` sees every aten operator that reaches a backend. Views, aliases and bare
allocations launch no kernel and are not counted; everything else (a matmul, an elementwise op, a
copy, a foreach op over a list) is one launch. On a GPU at GLUE batch sizes each launch costs some
microseconds of host time, so this count is the floor of a step's time there, and it can be
measured on a CPU.
"""
from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

FREE = {"empty", "empty_strided", "empty_like", "detach", "alias", "lift_fresh", "_local_scalar_dense", "_unsafe_view",
        "set_", "resize_"}


class LaunchCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if not (func.is_view or name in FREE):
            self.ops[name] += 1
        return func(*args, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def count_launches(fn, *args, **kwargs) -> tuple[int, Counter]:
    """(launches, per-operator counts) of one call of `fn`."""
    with LaunchCounter() as counter:
        fn(*args, **kwargs)
    return counter.total, counter.ops


def count_host_syncs(fn, *args, **kwargs) -> tuple[int, Counter]:
    """(host synchronisations, counts by kind: copy, read, shape) of one call of `fn`, as
    training/dispatch_count.py counts them."""
    from training.dispatch_count import HostSyncs
    with HostSyncs() as syncs:
        fn(*args, **kwargs)
    return syncs.total, syncs.counts
