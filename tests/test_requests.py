from __future__ import annotations

import pytest

from pdsim.core.errors import InvalidRequest
from pdsim.core.requests import ModelLimits, SamplingParams, validate_request

LIMITS = ModelLimits(max_context=64, vocab_size=100)


@pytest.mark.parametrize(
    ("prompt", "params", "message"),
    [
        ([], SamplingParams(), "prompt is empty"),
        ([1] * 64, SamplingParams(max_tokens=1), "prompt has 64 tokens"),
        ([1] * 10, SamplingParams(max_tokens=0), "max_tokens must be > 0, got 0"),
        ([1] * 10, SamplingParams(max_tokens=-3), "got -3"),
        ([1] * 10, SamplingParams(max_tokens=55), "max_tokens (55) plus the prompt (10 tokens)"),
        ([1] * 10, SamplingParams(temperature=-0.5), "temperature must be >= 0, got -0.5"),
        ([1] * 10, SamplingParams(top_p=0.0), "top_p must be in (0, 1], got 0.0"),
        ([1] * 10, SamplingParams(top_p=1.5), "got 1.5"),
        ([1] * 10, SamplingParams(top_k=-1), "top_k must be in [0, 2147483647]"),
        ([1, 100], SamplingParams(), "prompt token id 100 is outside the vocabulary"),
    ],
)
def test_bad_requests_name_the_bad_value(prompt: list[int], params: SamplingParams, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_request(prompt, params, LIMITS)
    assert message in str(caught.value)


def test_a_request_that_exactly_fills_the_context_is_accepted() -> None:
    validate_request([1] * 10, SamplingParams(max_tokens=54), LIMITS)
