from __future__ import annotations

import torch

from pdsim.core.requests import SamplingParams
from pdsim.engine.sampler import sample
from pdsim.engine.step import SamplingRow, TokenRules


def _logits() -> torch.Tensor:
    return torch.randn(4, 50, generator=torch.Generator().manual_seed(1))


def test_greedy_is_argmax() -> None:
    logits = _logits()
    rows = [SamplingRow(SamplingParams(), seed=0, index=0)] * 4
    assert sample(logits, rows) == logits.argmax(-1).tolist()


def test_seeded_sampling_depends_only_on_seed_and_index() -> None:
    logits = _logits()
    params = SamplingParams(temperature=1.0, seed=7)
    row = SamplingRow(params, seed=7, index=3)
    alone = sample(logits[2:3], [row])
    in_batch = sample(logits, [SamplingRow(params, 7, 0), SamplingRow(params, 7, 1), row, row])
    assert alone[0] == in_batch[2]
    draws = {sample(logits[2:3], [SamplingRow(params, 7, i)])[0] for i in range(40)}
    assert len(draws) > 5  # different token indices draw differently


def test_top_k_1_and_tiny_top_p_reduce_to_greedy() -> None:
    logits = _logits()
    greedy = logits.argmax(-1).tolist()
    for params in (SamplingParams(temperature=2.0, top_k=1), SamplingParams(temperature=2.0, top_p=1e-6)):
        assert sample(logits, [SamplingRow(params, seed=s, index=s) for s in range(4)]) == greedy


def test_top_k_keeps_only_the_k_best() -> None:
    logits = _logits()[0]
    best3 = set(torch.topk(logits, 3).indices.tolist())
    params = SamplingParams(temperature=5.0, top_k=3)
    draws = {sample(logits[None], [SamplingRow(params, seed=1, index=i)])[0] for i in range(200)}
    assert draws == best3


def test_suppressed_tokens_are_never_sampled_and_min_tokens_holds_off_eos_and_stop_ids() -> None:
    logits = _logits()
    best = logits.argmax(-1).tolist()
    rules = TokenRules(suppress=frozenset({best[0]}), eos=frozenset({best[1]}))
    early = SamplingParams(min_tokens=2, stop_token_ids=(best[2],))
    got = sample(logits[:3], [SamplingRow(early, 0, 0), SamplingRow(early, 0, 1), SamplingRow(early, 0, 1)], rules)
    assert got[0] != best[0] and got[1] != best[1] and got[2] != best[2]
    late = sample(logits[1:3], [SamplingRow(early, 0, 2)] * 2, rules)
    assert late == best[1:3]  # from min_tokens on, EOS and stop ids are ordinary tokens


def test_min_p_1_is_greedy() -> None:
    logits = _logits()
    params = SamplingParams(temperature=50.0, min_p=1.0)
    assert sample(logits, [SamplingRow(params, seed=s, index=s) for s in range(4)]) == logits.argmax(-1).tolist()


def test_logprobs_are_the_raw_log_softmax_and_only_for_rows_that_ask() -> None:
    from pdsim.engine.sampler import token_logprobs

    logits = _logits()
    rows = [
        SamplingRow(SamplingParams(logprobs=3), 0, 0),
        SamplingRow(SamplingParams(), 0, 0),
        SamplingRow(SamplingParams(temperature=5.0, top_k=2, logprobs=0), 0, 0),
        SamplingRow(SamplingParams(logprobs=5), 0, 0),
    ]
    tokens = sample(logits, rows)
    got = token_logprobs(logits, rows, tokens)
    expected = torch.log_softmax(logits, dim=-1)  # before temperature and top-k: the model's distribution
    assert got is not None and got[1] is None
    for i, k in ((0, 3), (2, 0), (3, 5)):
        entry = got[i]
        assert entry is not None
        assert abs(entry.logprob - expected[i, tokens[i]].item()) < 1e-5
        assert len(entry.top) == k
        assert [t for t, _ in entry.top] == torch.topk(expected[i], k).indices.tolist()
        assert [v for _, v in entry.top] == sorted((v for _, v in entry.top), reverse=True)
    for i in (0, 3):  # greedy: the sampled token is the likeliest
        entry = got[i]
        assert entry is not None and entry.top[0] == (tokens[i], entry.logprob)


def test_suppressed_tokens_are_never_listed() -> None:
    from pdsim.engine.sampler import token_logprobs

    logits = _logits()[:1]
    best = int(logits.argmax())
    rules = TokenRules(suppress=frozenset({best}))
    rows = [SamplingRow(SamplingParams(logprobs=10), 0, 0)]
    tokens = sample(logits, rows, rules)
    got = token_logprobs(logits, rows, tokens, rules)
    assert got is not None and token_logprobs(logits, [SamplingRow(SamplingParams(), 0, 0)], tokens, rules) is None
    entry = got[0]
    assert entry is not None and best not in [t for t, _ in entry.top] and tokens[0] == entry.top[0][0]
