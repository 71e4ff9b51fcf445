"""Turn logits into tokens: greedy, or temperature with top-k, top-p and min-p.

Before either, the model's suppressed tokens (`generation_config.suppress_tokens`, as `model.generate` honours
them) are masked, and so are EOS and a request's stop tokens until it has `min_tokens` tokens.

`token_logprobs` reports, for the rows that asked, each sampled token's logprob and the k likeliest tokens'.
They are of the model's own distribution (log-softmax of the raw logits, before temperature, top-k/top-p/min-p
and min_tokens masking, as vLLM reports them by default), except that suppressed tokens, which are never
sampled, are -inf and so never listed. Rows that did not ask cost nothing.

Sampling is a pure function of (logits, params, token index): a seeded request draws its i-th token from a
generator seeded with (seed, i), so it samples the same tokens whichever node or batch computes each step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pdsim.core.requests import TokenLogprobs
from pdsim.engine.step import NO_RULES, SamplingRow, TokenRules, mix_seed


def sample(logits: torch.Tensor, rows: Sequence[SamplingRow], rules: TokenRules = NO_RULES) -> list[int]:
    """`logits` is `[batch, vocab]`; returns one token per row."""
    assert logits.shape[0] == len(rows), (logits.shape, len(rows))
    logits = _mask(logits, rows, rules)
    tokens: list[int] = logits.argmax(dim=-1).tolist()
    for i, row in enumerate(rows):
        if not row.params.greedy:
            tokens[i] = _sample_row(logits[i], row)
    return tokens


def token_logprobs(
    logits: torch.Tensor, rows: Sequence[SamplingRow], tokens: Sequence[int], rules: TokenRules = NO_RULES
) -> list[TokenLogprobs | None] | None:
    """One entry per row, None where the row's request did not ask for logprobs; None when no row asked."""
    wanted = [i for i, row in enumerate(rows) if row.params.logprobs is not None]
    if not wanted:
        return None
    out: list[TokenLogprobs | None] = [None] * len(rows)
    index = torch.tensor(wanted, device=logits.device)
    logp = torch.log_softmax(logits.index_select(0, index).float(), dim=-1)
    if rules.suppress:
        logp[:, sorted(rules.suppress)] = float("-inf")
    k = max(rows[i].params.logprobs or 0 for i in wanted)
    top_values, top_ids = torch.topk(logp, k, dim=-1) if k else (logp[:, :0], logp[:, :0].long())
    chosen = logp.gather(1, torch.tensor([[tokens[i]] for i in wanted], device=logits.device))
    values, ids, picked = top_values.cpu().tolist(), top_ids.cpu().tolist(), chosen[:, 0].cpu().tolist()
    for j, i in enumerate(wanted):
        own = rows[i].params.logprobs or 0
        out[i] = TokenLogprobs(picked[j], tuple(zip(ids[j][:own], values[j][:own], strict=True)))
    return out


def _sample_row(logits: torch.Tensor, row: SamplingRow) -> int:
    params = row.params
    scores = logits.detach().to("cpu", torch.float32) / params.temperature
    if 0 < params.top_k < scores.shape[0]:
        kth_best = torch.topk(scores, params.top_k).values[-1]
        scores = scores.masked_fill(scores < kth_best, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        sorted_probs = torch.softmax(sorted_scores, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p; the best token always stays.
        drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= params.top_p
        scores = scores.scatter(0, order[drop], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if params.min_p > 0.0:
        probs = probs.masked_fill(probs < params.min_p * probs.max(), 0.0)
    generator = torch.Generator().manual_seed(mix_seed(row.seed, row.index))
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _mask(logits: torch.Tensor, rows: Sequence[SamplingRow], rules: TokenRules) -> torch.Tensor:
    early = [
        (i, rules.eos | set(row.params.stop_token_ids))
        for i, row in enumerate(rows)
        if row.index < row.params.min_tokens
    ]
    if not rules.suppress and not early:
        return logits
    logits = logits.clone()
    if rules.suppress:
        logits[:, sorted(rules.suppress)] = float("-inf")
    for i, banned in early:
        if banned:
            logits[i, sorted(banned)] = float("-inf")
    return logits
