"""Counting the points where a training step makes the host wait for the device (or the device for
the host): `with HostSyncs() as syncs: step()`, then `syncs.total` and `syncs.counts` by kind.

Counted, on any device (so that a CPU run shows what an accelerator would pay):

- `copy`: host data sent to a device by a call that blocks: `Tensor.to`/`cuda`/`copy_` of a host
  tensor to an accelerator, unless `non_blocking=True` from pinned memory (on a CPU-only run none
  of these is a copy, and none is counted), and `torch.tensor`/`as_tensor` of Python data with a
  `device` (counted on the CPU too: on an accelerator each is a blocking copy);
- `read`: a device value read on the host: `item`, `tolist`, `bool`/`int`/`float` of a tensor
  (`aten._local_scalar_dense`);
- `shape`: an op whose output size depends on the data (`nonzero`, `masked_select`, `unique`, a
  `repeat_interleave` by a tensor without `output_size`).

Host-side work on host tensors (numpy views, `torch.from_numpy`) is not counted.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__int__,
         torch.Tensor.__float__, torch.Tensor.__index__}
SHAPE_OPS = ("nonzero", "masked_select", "_unique", "_unique2", "unique_dim", "unique_consecutive")


def _device_of(args, kwargs):
    """The target device named by a `Tensor.to` call's arguments, or None."""
    for value in (kwargs.get("device"), *args):
        if isinstance(value, (str, torch.device)):
            return torch.device(value)
        if isinstance(value, torch.Tensor):
            return value.device
    return None


class _Dispatch(TorchDispatchMode):
    @staticmethod
    def _data_sized(name, args, kwargs) -> bool:
        """A repeat_interleave by counts without `output_size`; indexing by a boolean mask."""
        if name == "repeat_interleave":
            return str(kwargs.get("output_size", args[2] if len(args) > 2 else None)) == "None" and \
                len(args) >= 1 and isinstance(args[0], torch.Tensor) and len(args) < 2
        if name == "index" and len(args) > 1:
            return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])
        return False

    def __init__(self, counts: Counter):
        super().__init__()
        self.counts, self.quiet = counts, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if not self.quiet:
            if name == "_local_scalar_dense":
                self.counts["read"] += 1
            elif name in SHAPE_OPS or self._data_sized(name, args, kwargs or {}):
                self.counts["shape"] += 1
        return func(*args, **(kwargs or {}))


class HostSyncs(TorchFunctionMode):
    """The counter (see the module docstring); `counts` by kind, `total` of all."""

    def __init__(self):
        super().__init__()
        self.counts: Counter = Counter()
        self._dispatch = _Dispatch(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __enter__(self):
        self._dispatch.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self._dispatch.__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READS:
            self.counts["read"] += 1
            self._dispatch.quiet += 1  # (its _local_scalar_dense is this read)
            try:
                return func(*args, **kwargs)
            finally:
                self._dispatch.quiet -= 1
        if func in (torch.Tensor.to, torch.Tensor.cuda) and args and isinstance(args[0], torch.Tensor):
            source, target = args[0], _device_of(args[1:], kwargs) if func is torch.Tensor.to else torch.device("cuda")
            if source.device.type == "cpu" and target is not None and self._blocking(source, target, kwargs):
                self.counts["copy"] += 1
        elif func is torch.Tensor.copy_ and len(args) > 1 and isinstance(args[1], torch.Tensor):
            if args[1].device.type == "cpu" and self._blocking(args[1], args[0].device, kwargs,
                                                               args[2] if len(args) > 2 else None):
                self.counts["copy"] += 1
        elif func in (torch.tensor, torch.as_tensor) and kwargs.get("device") is not None and args \
                and not isinstance(args[0], torch.Tensor):
            self.counts["copy"] += 1
        return func(*args, **kwargs)

    @staticmethod
    def _blocking(source: torch.Tensor, target: torch.device, kwargs, non_blocking=None) -> bool:
        """A host-to-device copy that blocks (a host tensor moved to the host is no copy)."""
        if target.type == "cpu":
            return False
        return not kwargs.get("non_blocking", non_blocking) or not source.is_pinned()


def host_syncs_per_step(step, steps: int) -> float:
    """The mean count of host synchronisations over `steps` calls of `step()` (warm it up first: the
    first steps make tables that later steps reuse)."""
    with HostSyncs() as syncs:
        for _ in range(steps):
            step()
    return syncs.total / steps
