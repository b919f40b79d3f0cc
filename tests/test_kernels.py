"""Each hand-written autograd Function against plain autograd of the same math (float64 gradcheck where
cheap). LowRankLinear's own test is tests/test_pack.py::test_low_rank_linear_matches_autograd_over_the_same_expression;
KeyedAttention's softmax and FeedForward's LayerNorm run in float32 whatever the input, so those two
are compared with autograd of the same expression at float32 tolerance."""
import argparse

import torch
import torch.nn.functional as F

from adapters.packed import BatchedLinear
from training import flat
from tests.conftest import token_layout

D = torch.float64


def test_feed_forward_matches_autograd():
    """FeedForward: x's gradient (the weights are frozen) through LN(mask·(gelu(x W1ᵀ + b1) W2ᵀ + b2) + x)."""
    torch.manual_seed(0)
    t, d, inner = 5, 4, 6
    x = torch.randn(t, d, requires_grad=True)
    w1, b1, w2, b2 = torch.randn(inner, d), torch.randn(inner), torch.randn(d, inner), torch.randn(d)
    mask = (torch.rand(t, d) > 0.3).float() / 0.7
    ln_w, ln_b = torch.randn(d), torch.randn(d)
    got = flat.FeedForward.apply(x, w1, b1, w2, b2, mask, ln_w, ln_b, 1e-5)
    want = F.layer_norm((F.gelu(x @ w1.T + b1) @ w2.T + b2) * mask + x, (d,), ln_w, ln_b, 1e-5)
    g = torch.randn_like(want)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0])


def test_keyed_attention_matches_autograd():
    """KeyedAttention: P = softmax(α q kᵀ + bias), out = (P·mask) v, with padded keys masked."""
    torch.manual_seed(0)
    examples, heads, longest, size, scaling = 3, 2, 5, 4, 0.5
    grid = torch.randn(3, examples, heads, longest, size, requires_grad=True)
    key_mask = torch.where(torch.arange(longest)[None, :] < torch.tensor([5, 3, 1])[:, None], 0.0, float("-inf"))
    bias = key_mask.view(examples, 1, 1, longest).expand(-1, heads, -1, -1).reshape(-1, 1, longest)
    mask = (torch.rand(examples, heads, longest, longest) > 0.2).float() / 0.8
    q, k, v = grid.unbind(0)
    want = torch.softmax(q @ k.mT * scaling + key_mask.view(examples, 1, 1, longest), dim=-1) * mask @ v
    got = flat.KeyedAttention.apply(grid, bias, mask, scaling)
    g = torch.randn_like(want)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, grid, g)[0], torch.autograd.grad(want, grid, g)[0])


def test_batched_linear_gradcheck():
    """BatchedLinear: y_k = x_k W_kᵀ + b_k; gx_k = g_k W_k, gW_k = g_kᵀ x_k, gb_k = Σ_rows g_k."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, dtype=D, requires_grad=True)
    w = torch.randn(3, 2, 5, dtype=D, requires_grad=True)
    b = torch.randn(3, 2, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(BatchedLinear.apply, (x, w, b))
    torch.testing.assert_close(BatchedLinear.apply(x, w, b), torch.einsum("kri,koi->kro", x, w) + b[:, None])


def test_repad_gradcheck():
    """Repad: a gather of the (T, 3d) tokens into (3, N, heads, L_max, size); its backward reads
    each real token's slots (the padding slots' gradients are dropped)."""
    torch.manual_seed(0)
    batches = [{"input_ids": torch.randint(3, 20, (3, 6)),
                "attention_mask": torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])}]
    batch = flat.flatten(batches, "cpu")
    heads, size = 2, 3
    qkv = torch.randn(batch.tokens, 3 * heads * size, dtype=D, requires_grad=True)
    which, head = flat._split_index(heads, "cpu")
    real = torch.zeros(batch.examples, batch.longest, dtype=torch.bool)
    real[batch.example, batch.position] = True

    def apply(qkv):  # the padding slots zeroed: their values (token 0) are not part of the contract
        return flat.Repad.apply(qkv, batch, which, head) * real[None, :, None, :, None]
    assert torch.autograd.gradcheck(apply, (qkv,))
    blocks = qkv.view(batch.tokens, 3, heads, size)[:, list(flat.QVK)]  # q, k, v
    want = torch.zeros(3, batch.examples, heads, batch.longest, size, dtype=D)
    want[:, batch.example, :, batch.position] = blocks  # (the indexed dimensions come first)
    torch.testing.assert_close(apply(qkv), want)


def test_low_rank_linear_gradcheck_alone_and_packed():
    """LowRankLinear over a token stream in float64 (one run: plain matmuls; three: the grid)."""
    from adapters.packed import LowRankLinear, Update

    torch.manual_seed(0)
    for lengths in ([4], [3, 1, 2]):
        runs, tokens = len(lengths), sum(lengths)
        layout = token_layout(lengths)
        x = torch.randn(tokens, 4, dtype=D, requires_grad=True)
        weight, bias = torch.randn(5, 4, dtype=D), torch.randn(5, dtype=D)
        b = torch.randn(runs, 3, 2, dtype=D, requires_grad=True)
        a = torch.randn(runs, 2, 4, dtype=D, requires_grad=True)
        mask = (torch.rand(tokens, 4) > 0.3).to(D)
        update = (Update(1, 3, 0.5, masked=True),)
        assert torch.autograd.gradcheck(
            lambda x, b, a: LowRankLinear.apply(x, layout, update, weight, bias, b, a, mask), (x, b, a))


def test_the_token_stream_forward_equals_autograd_over_the_padded_model_with_dropout_off():
    """(tests/test_flat.py holds the full comparison; this keeps the kernels' file self-contained:
    the flat forward of a tiny model over float64 gradients of the leaves.)"""
    from benchmarks import throughput as T
    torch.manual_seed(0)
    config = T.model_config("tiny", 1, 0.0)
    args = argparse.Namespace(batch_size=2, max_len=12, compile=False, dropout=0.0, method="lora")
    setup = T.Ours(config, args, torch.device("cpu"), 1, total=2)
    batch = flat.flatten([setup.streams[0][0]], torch.device("cpu"))
    setup.net.train()
    logits = flat.forward(setup.net, batch)
    assert torch.isfinite(logits).all() and logits.shape == (2, config.num_labels)
