"""The one rule for which runs may share a pack (training/pack_rules.py), as training checks it and as
the sweep groups runs by it."""
from types import SimpleNamespace

import pytest

from sweeping.packing import form_packs, job_overrides
from training.config import compose
from training.pack_rules import check_packable

BASE = ["model=tiny", "data=sample", "task=rte", "init_from=null"]


def test_members_may_differ_in_their_own_keys_only():
    cfgs = [compose([*BASE, "seed=0", "lr=1e-3"]), compose([*BASE, "seed=1", "lr=2e-3", "optim.weight_decay=0.3"])]
    check_packable(cfgs)  # seed, lr, weight decay: each member's own
    with pytest.raises(ValueError, match=r"these differ too: \['batch_size'\]"):
        check_packable([compose(BASE), compose([*BASE, "batch_size=8"])])
    with pytest.raises(ValueError, match=r"these differ too: \['optim'\]"):
        check_packable([compose(BASE), compose([*BASE, "optim.eps=1e-6"])])
    with pytest.raises(ValueError, match="adapter=full trains the backbone itself"):
        check_packable([compose([*BASE, "adapter=full", f"seed={s}"]) for s in (0, 1)])


def test_the_sweep_groups_by_the_same_rule():
    def planned(*overrides):
        overrides = [*BASE, *overrides]
        return SimpleNamespace(overrides=overrides, cfg=compose(overrides))

    runs = [planned("seed=0"), planned("seed=1", "lr=2e-3"), planned("seed=0", "batch_size=8"),
            planned("adapter=bitfit", "seed=0"), planned("adapter=bitfit", "seed=1")]
    packs = form_packs(runs, max_size=8)
    assert [len(p) for p in packs] == [2, 1, 1, 1]  # bitfit never shares; batch 8 is another pass
    for pack in packs:  # every pack the sweep forms is one training accepts
        check_packable([run.cfg for run in pack])
    assert job_overrides(packs[0])[-1] == ('pack.members=[["init_from=null","seed=0"],'
                                           '["init_from=null","seed=1","lr=2e-3"]]')
