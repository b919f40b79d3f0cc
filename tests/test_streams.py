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


def test_token_masks_drawn_together_equal_each_drawn_alone():
    """From the second step on, the token-stream dropouts of one shape draw their masks together:
    the same masks as one module at a time."""
    keys = streams.row_keys([0, 1], 1, 1, 3, "cpu")
    tokens = streams.mix(torch.arange(11, dtype=torch.int64))
    layers = [streams.KeyedDropout(0.25, f"layer{i}") for i in range(3)]
    x = torch.randn(11, 5)
    for _ in range(2):  # the first step registers the modules, the second groups them
        with streams.rows(keys, tokens):
            together = [layer(x) for layer in layers]
    for layer, got in zip(layers, together):
        with streams.rows(keys, tokens):
            alone = streams.keep_mask(streams.module_rows(layer.key, 11), x.shape, 0.25)
        assert torch.equal(got, x * (alone * (1.0 / 0.75)))
