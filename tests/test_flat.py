"""The padding-free token stream (training/flat.py, with the hand-written nodes of adapters/packed.py)
computes what the padded model computes: the same logits and the same gradients, alone and packed."""
import argparse

import pytest
import torch

from benchmarks import throughput as T
from training import flat
from training.pack import concat_batches


@pytest.mark.parametrize("method", ["lora", "symlora", "delora"])
@pytest.mark.parametrize("runs", [1, 3])
def test_token_stream_gives_the_padded_models_logits_and_gradients(runs, method):
    """Random factors (and SymLoRA's λ far from 1) for every member."""
    torch.manual_seed(0)
    config = T.model_config("tiny", 2, 0.0)
    args = argparse.Namespace(batch_size=4, max_len=24, compile=False, dropout=0.0, method=method)
    setup = T.Ours(config, args, torch.device("cpu"), runs, total=4)
    with torch.no_grad():  # every factor non-zero, every member different
        setup.bank.data.normal_(0.0, 0.2)
    batches = [stream[0] for stream in setup.streams]
    leaves = [leaf for leaf in setup.bank.leaves if leaf is not None]
    weights = torch.randn(runs * args.batch_size, config.num_labels)

    def outputs(logits):
        return logits, torch.autograd.grad((logits * weights).sum(), leaves)

    setup.net.train()
    flat_logits, flat_grads = outputs(flat.forward(setup.net, flat.flatten(batches, torch.device("cpu"))))
    padded = concat_batches(batches, pad_token_id=1)
    padded_logits, padded_grads = outputs(setup.net(input_ids=padded["input_ids"],
                                                    attention_mask=padded["attention_mask"]).logits)
    torch.testing.assert_close(flat_logits, padded_logits, rtol=1e-5, atol=1e-6)
    for got, want in zip(flat_grads, padded_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_keyed_attention_matches_autograd_over_the_same_expression():
    torch.manual_seed(0)
    examples, heads, longest, size, scaling = 3, 2, 5, 4, 0.5
    grid = torch.randn(3, examples, heads, longest, size, requires_grad=True)
    lengths = torch.tensor([5, 3, 1])
    key_mask = torch.where(torch.arange(longest)[None, :] < lengths[:, None], 0.0, float("-inf"))
    bias = key_mask.view(examples, 1, 1, longest).expand(-1, heads, -1, -1).reshape(-1, 1, longest)
    mask = (torch.rand(examples, heads, longest, longest) > 0.2).float() / 0.8
    q, k, v = grid.unbind(0)
    scores = torch.matmul(q, k.transpose(2, 3)) * scaling + key_mask.view(examples, 1, 1, longest)
    want = torch.matmul(torch.softmax(scores, dim=-1) * mask, v)
    got = flat.KeyedAttention.apply(grid, bias, mask, scaling)
    g = torch.randn_like(want)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, grid, g)[0], torch.autograd.grad(want, grid, g)[0])


@pytest.mark.parametrize("runs", [1, 3])
def test_compiled_token_stream_gives_the_eager_logits_and_gradients(runs):
    """compile=true traces flat.forward with its hand-written autograd nodes (dynamo must see through
    them: a tensor cached inside one once broke it); aot_eager checks the trace without a C++ build."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    config = T.model_config("tiny", 2, 0.0)
    args = argparse.Namespace(batch_size=4, max_len=24, compile=False, dropout=0.0, method="lora")
    setup = T.Ours(config, args, torch.device("cpu"), runs, total=4)
    with torch.no_grad():
        setup.bank.data.normal_(0.0, 0.2)
    leaves = [leaf for leaf in setup.bank.leaves if leaf is not None]
    compiled = torch.compile(flat.forward, backend="aot_eager", dynamic=True)
    setup.net.train()
    for step in range(2):  # two lengths: the dynamic trace is reused, not rebuilt per length
        batch = flat.flatten([stream[step] for stream in setup.streams], torch.device("cpu"))
        weights = torch.randn(runs * args.batch_size, config.num_labels)
        results = []
        for forward in (flat.forward, compiled):
            logits = forward(setup.net, batch)
            results.append((logits, torch.autograd.grad((logits * weights).sum(), leaves)))
        (eager, eager_grads), (traced, traced_grads) = results
        torch.testing.assert_close(traced, eager, rtol=1e-5, atol=1e-6)
        for got, want in zip(traced_grads, eager_grads):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_fused_step_makes_no_blocking_host_copy_or_read_but_the_loss_check():
    """training/dispatch_count.py over an epoch of 3 steps of a pack of 2, dropout on: the batch and
    its dropout keys reach the device without a blocking copy, the dropout tables are made from what
    is already there; the reads are the loss check of the last step (log_every) and the epoch's mean
    losses."""
    from training.dispatch_count import HostSyncs
    from training.loop import train_epoch

    torch.manual_seed(0)
    config = T.model_config("tiny", 2, 0.1)
    args = argparse.Namespace(batch_size=4, max_len=24, compile=False, dropout=0.1, method="lora")
    setup = T.Ours(config, args, torch.device("cpu"), 2, total=6)
    setup.run(0, 2)  # the first steps register the dropout sites (small tables, made once)
    with HostSyncs() as syncs:
        train_epoch(setup.net, setup.members, setup.bank, [s[2:5] for s in setup.streams], epoch=1,
                    pad_token_id=1, device=torch.device("cpu"), precision="fp32", max_grad_norm=1.0,
                    log_every=10**9, progress=setup.progress)
    assert dict(syncs.counts) == {"read": 2}
    # the benchmark's helper: forward, backward and the fused AdamW step, no loss check: nothing
    from training.dispatch_count import host_syncs_per_step
    batch = flat.flatten([s[5] for s in setup.streams], torch.device("cpu"))

    def step():
        flat.forward(setup.net, batch).sum().backward()
        setup.bank.step(1.0)
    assert host_syncs_per_step(step, 2) == 0
