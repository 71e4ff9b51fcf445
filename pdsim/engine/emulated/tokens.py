"""The tokens an emulated model "samples": a pure function of the request's seed and the token's position.

No model runs, so the text means nothing; what matters is that it is the same whichever node, batch or mode
produces each token (a colocated and a disaggregated run of one seeded workload stream identical text) and that
each token is one printable character of the byte tokenizer the router uses for emulated models. The emulated
distribution is uniform over those characters, which is what logprobs report. EOS is never drawn: a request
ends at its max_tokens or a stop token, as benchmark requests (ignore_eos) do.
"""

from __future__ import annotations

import math

from pdsim.core.preset_shapes import NUM_BYTE_TOKENS
from pdsim.core.requests import TokenLogprobs
from pdsim.engine.step import SamplingRow, mix_seed

PRINTABLE = tuple(range(0x20, 0x7F))  # the byte tokenizer's ids of the printable ASCII characters
UNIFORM_LOGPROB = -math.log(len(PRINTABLE))
assert max(PRINTABLE) < NUM_BYTE_TOKENS


def emulated_token(row: SamplingRow, position: int) -> int:
    """The token at `position` (0-based, prompt included) of a request; a stop token is skipped while the request
    still owes `min_tokens`."""
    banned = set(row.params.stop_token_ids) if row.index < row.params.min_tokens else set()
    draw = mix_seed(row.seed, position)
    for step in range(len(PRINTABLE)):
        token = PRINTABLE[(draw + step) % len(PRINTABLE)]
        if token not in banned:
            return token
    raise ValueError("every printable token is a stop token the request may not stop at yet")


def emulated_logprobs(row: SamplingRow, token: int) -> TokenLogprobs | None:
    """The uniform distribution's: the token, then the next k - 1 printable characters, all equally likely."""
    k = row.params.logprobs
    if k is None:
        return None
    first = PRINTABLE.index(token)
    top = tuple((PRINTABLE[(first + i) % len(PRINTABLE)], UNIFORM_LOGPROB) for i in range(min(k, len(PRINTABLE))))
    return TokenLogprobs(UNIFORM_LOGPROB, top)
