"""Keyed dropout: a run's masks depend on its own seed, epoch, step, example, position and call only;
they are as uncorrelated as torch.bernoulli's; each run or pack owns its tables."""
import weakref

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from training import streams


def masks(seeds, batch, shape, module=7, p=0.1, source=None):
    source = source or streams.DropoutStreams()
    with source.drawing(streams.row_keys(seeds, epoch=2, step=5, batch=batch, device="cpu")):
        return source.scaled_mask(module, torch.Size((len(seeds) * batch, *shape)), p) > 0


def test_the_hash_is_murmur3s_fmix32_on_ints_arrays_and_tensors():
    """fmix32 as MurmurHash3.cpp writes it (h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13;
    h *= 0xc2b2ae35; h ^= h >> 16, on uint32), the same bits through all three paths."""
    x = 0x12345678
    x ^= x >> 16; x = x * 0x85EBCA6B & 0xFFFFFFFF; x ^= x >> 13; x = x * 0xC2B2AE35 & 0xFFFFFFFF  # noqa: E702
    assert x ^ (x >> 16) == streams.mix(0x12345678)
    values = np.array([0, 1, 0x12345678, 0xFFFFFFFF, 0x80000000], dtype=np.uint32)
    expected = [streams.mix(int(v)) for v in values]
    assert streams.mix(values).tolist() == expected
    tensor = streams.as_tensor(values)
    assert streams.mix(tensor).numpy().view(np.uint32).tolist() == expected


def test_a_runs_masks_do_not_depend_on_its_pack_mates_or_on_padding():
    alone = masks([3], 4, (20, 16))
    packed = masks([1, 3, 9], 4, (30, 16))  # longer padding, other runs around it
    assert torch.equal(packed[4:8, :20], alone)
    assert not torch.equal(packed[:4, :20], alone)  # another seed: another stream


def test_masks_keep_one_minus_p_and_differ_between_modules_and_steps():
    a, b = masks([0, 1], 64, (32, 64)), masks([0, 1], 64, (32, 64), module=8)
    assert a.float().mean().item() == pytest.approx(0.9, abs=0.005)
    assert (a != b).float().mean().item() == pytest.approx(2 * 0.9 * 0.1, abs=0.01)  # independent


def pair_z_scores(keep: torch.Tensor, pairs: int, generator: torch.Generator) -> torch.Tensor:
    """|z| of the correlation of `pairs` random column pairs of a (rows, columns) 0/1 matrix, over its
    rows (z = r·√rows, standard normal for independent columns)."""
    k = keep.double()
    k = (k - k.mean(0)) / k.std(0)
    first = torch.randint(0, k.shape[1], (pairs,), generator=generator)
    second = (first + torch.randint(1, k.shape[1], (pairs,), generator=generator)) % k.shape[1]
    r = (k[:, first] * k[:, second]).mean(0)
    return r.abs() * k.shape[0] ** 0.5


def test_fixed_coordinate_pairs_are_no_more_correlated_than_with_torch_bernoulli():
    """8,192 token rows × 256 coordinates, p = 0.1, 3,000 column pairs: the keyed masks have no more
    pairs beyond 4.5σ than torch.bernoulli's (each expects 0.02), and their largest |z| is of the same
    size. (A single multiply-xorshift round over row key ^ coordinate hash fails both: 3 pairs, the
    largest at 10σ.)"""
    rows, columns, p = 8192, 256, 0.1
    generator = torch.Generator().manual_seed(0)
    source = streams.DropoutStreams()
    with source.drawing(streams.row_keys([0], 1, 1, rows, "cpu")):
        keyed = source.scaled_mask(11, torch.Size((rows, columns)), p) > 0
    reference = torch.bernoulli(torch.full((rows, columns), 1 - p), generator=generator) > 0
    z_keyed = pair_z_scores(keyed, 3000, torch.Generator().manual_seed(1))
    z_reference = pair_z_scores(reference, 3000, torch.Generator().manual_seed(1))
    assert (z_keyed > 4.5).sum() <= (z_reference > 4.5).sum() + 1
    assert z_keyed.max() < max(5.0, 1.25 * z_reference.max())
    assert keyed.double().mean().item() == pytest.approx(1 - p, abs=0.002)


def test_keyed_dropout_scales_what_it_keeps_and_is_off_in_eval():
    layer = streams.KeyedDropout(0.5, "x")
    x = torch.ones(6, 10)
    with layer.streams.drawing(streams.row_keys([0, 1], 1, 1, 3, "cpu")):
        y = layer(x)
        assert set(y.unique().tolist()) <= {0.0, 2.0}
        layer.eval()
        assert torch.equal(layer(x), x)
    layer.train()
    with layer.streams.drawing(streams.row_keys([0, 1], 1, 1, 3, "cpu")):
        assert torch.equal(layer(x), y)  # a pure function of the keys (and of the call: the first)


def test_each_call_of_a_module_in_a_step_draws_its_own_mask():
    """RoBERTa's classification head applies one dropout module twice: two masks, as nn.Dropout
    draws; the n-th call of the next step with the same keys draws the same n-th mask."""
    layer = streams.KeyedDropout(0.5, "classifier.dropout")
    keys = streams.row_keys([0, 1], 1, 1, 8, "cpu")
    x = torch.ones(16, 32)
    with layer.streams.drawing(keys):
        first, second = layer(x), layer(x)
    assert not torch.equal(first, second)
    assert (first != second).float().mean().item() == pytest.approx(0.5, abs=0.06)  # independent at p = 0.5
    with layer.streams.drawing(keys):
        assert torch.equal(layer(x), first) and torch.equal(layer(x), second)


def test_the_classification_heads_two_dropouts_differ_inside_a_roberta_model():
    from transformers import RobertaConfig, RobertaForSequenceClassification
    config = RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=40, hidden_dropout_prob=0.5,
                           attention_probs_dropout_prob=0.0, classifier_dropout=0.5, num_labels=2)
    model = streams.install(RobertaForSequenceClassification(config)).train()
    seen = []
    model.classifier.dropout.register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    with streams.drawing(streams.of(model), streams.row_keys([0], 1, 1, 4, "cpu")):
        model(input_ids=torch.randint(3, 50, (4, 7)))
    (x1, y1), (x2, y2) = seen
    keep1, keep2 = (y1 != 0) | (x1 == 0), (y2 != 0) | (x2 == 0)
    assert not torch.equal(keep1, keep2)


def test_token_masks_drawn_together_equal_each_drawn_alone():
    """From the second step on, the token-stream dropouts of one shape draw their masks together:
    the same masks as one module at a time."""
    keys = streams.row_keys([0, 1], 1, 1, 3, "cpu")
    tokens = streams.as_tensor(streams.mix(np.arange(11, dtype=np.uint32)))
    source = streams.DropoutStreams()
    layers = [streams.KeyedDropout(0.25, f"layer{i}", source) for i in range(3)]
    x = torch.randn(11, 5)
    for _ in range(2):  # the first step registers the modules, the second groups them
        with source.drawing(keys, tokens):
            together = [layer(x) for layer in layers]
    for layer, got in zip(layers, together):
        alone = streams.DropoutStreams()
        with alone.drawing(keys, tokens):
            assert torch.equal(got, x * alone.scaled_mask(layer.key, x.shape, 0.25))


def test_two_packs_own_their_tables():
    """install gives each model its own streams; drawing in one leaves the other's tables untouched."""
    one, two = (streams.install(torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Dropout(0.2))) for _ in range(2))
    (first,), (second,) = streams.of(one), streams.of(two)
    assert first is not second and streams.of(streams.install(one)) == [first]  # idempotent
    with streams.drawing([first], streams.row_keys([0], 1, 1, 3, "cpu")):
        one(torch.ones(3, 4))
    assert first.sites and not second.sites and not second.signatures


class LiveBytes(TorchDispatchMode):
    """The peak bytes of the tensors that ops allocate (outputs with storage of their own) while
    they live, beside the output named `keep` (not counted)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        inputs |= {v.untyped_storage().data_ptr() for v in (kwargs or {}).values() if isinstance(v, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs and t._base is None:
                size = t.untyped_storage().nbytes()
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, size)
        return out

    def _free(self, size):
        self.live -= size


@pytest.mark.parametrize("limit", [None, 2**12])
def test_mask_temporaries_stay_under_twice_the_masks_bytes(monkeypatch, limit):
    """The int32 words of a draw and their shift temporary: at most twice the float32 mask's bytes,
    and with a group limit smaller than the site, chunks of rows within it (the same mask)."""
    shape = torch.Size((64, 8, 32))
    keys = streams.row_keys([0], 1, 1, 64, "cpu")
    source = streams.DropoutStreams()
    with source.drawing(keys):
        source.site_rows(5, 64)
        source.coordinate_hashes(tuple(shape[1:]), "cpu")  # (cached across steps: not a temporary)
        whole = source.scaled_mask(5, shape, 0.1)
    if limit:
        monkeypatch.setattr(streams, "GROUP_ELEMENTS", limit)
    source = streams.DropoutStreams()
    with source.drawing(keys):
        source.site_rows(5, 64)
        source.coordinate_hashes(tuple(shape[1:]), "cpu")
        with LiveBytes() as counter:
            mask = source.scaled_mask(5, shape, 0.1)
    assert torch.equal(mask, whole)
    mask_bytes = mask.numel() * 4
    temporaries = counter.peak - mask_bytes
    assert temporaries <= 2 * mask_bytes + 1024  # (and the group's row keys: one word per row)
    if limit:
        assert temporaries <= 8 * limit + 1024  # 8 bytes per element of a chunk (and a few small tensors)
