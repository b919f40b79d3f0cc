"""Keyed dropout: a run's masks depend on its own seed, epoch, step, example and position only."""
import pytest
import torch

from training import streams


def masks(seeds, batch, shape, module=7, p=0.1):
    with streams.rows(streams.row_keys(seeds, epoch=2, step=5, batch=batch, device="cpu")):
        return streams.keep_mask(streams.module_rows(module, len(seeds) * batch), (len(seeds) * batch, *shape), p)


def test_a_runs_masks_do_not_depend_on_its_pack_mates_or_on_padding():
    alone = masks([3], 4, (20, 16))
    packed = masks([1, 3, 9], 4, (30, 16))  # longer padding, other runs around it
    assert torch.equal(packed[4:8, :20], alone)
    assert not torch.equal(packed[:4, :20], alone)  # another seed: another stream


def test_masks_keep_one_minus_p_and_differ_between_modules_and_steps():
    a, b = masks([0, 1], 64, (32, 64)), masks([0, 1], 64, (32, 64), module=8)
    assert a.float().mean().item() == pytest.approx(0.9, abs=0.005)
    assert (a != b).float().mean().item() == pytest.approx(2 * 0.9 * 0.1, abs=0.01)  # independent


def test_keyed_dropout_scales_what_it_keeps_and_is_off_in_eval():
    layer = streams.KeyedDropout(0.5, "x")
    x = torch.ones(6, 10)
    with streams.rows(streams.row_keys([0, 1], 1, 1, 3, "cpu")):
        y = layer(x)
        assert set(y.unique().tolist()) <= {0.0, 2.0}
        assert torch.equal(layer(x), y)  # a pure function of the keys
        layer.eval()
        assert torch.equal(layer(x), x)
