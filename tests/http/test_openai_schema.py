"""OpenAI bodies become pdsim's prompt, SamplingParams and options, with OpenAI's defaults."""

from __future__ import annotations

import pytest

from pdsim.core.errors import InvalidRequest
from pdsim.core.requests import SamplingParams
from router.http.openai_schema import DEFAULT_TEMPERATURE, HARMLESS_FIELDS, parse_chat, parse_completion


def test_defaults_follow_openai_and_the_nodes() -> None:
    parsed = parse_completion({"prompt": "hi"}, default_max_tokens=16)
    assert parsed.prompt == "hi"
    assert parsed.options.params == SamplingParams(temperature=DEFAULT_TEMPERATURE, max_tokens=16)
    assert (parsed.options.model, parsed.options.stream, parsed.options.include_usage) == (None, False, False)


def test_every_supported_field_arrives() -> None:
    body = {
        "model": "tiny", "prompt": [[1, 2, 3]], "max_tokens": 9, "temperature": 0, "top_p": 0.5, "top_k": -1,
        "seed": 3, "stop": "\n", "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True},
        "request_class": "chat", "n": 1, "logprobs": None, "echo": False, "presence_penalty": 0, "user": "ignored",
        "some_tool_extension": None, "min_p": 0.1, "min_tokens": 2, "stop_token_ids": [5, 6],
        "include_stop_str_in_output": True,
    }  # fmt: skip
    parsed = parse_completion(body, default_max_tokens=16)
    assert parsed.prompt == [1, 2, 3]  # a batch of one prompt
    assert parsed.options.params == SamplingParams(0.0, 0.5, 0, 3, 9, True, 0.1, 2, (5, 6))
    assert parsed.options.include_stop_str_in_output
    assert parsed.options.stop == ("\n",)
    assert (parsed.options.stream, parsed.options.include_usage, parsed.options.request_class) == (True, True, "chat")


def test_chat_content_parts_and_max_completion_tokens() -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        "max_tokens": 5,
        "max_completion_tokens": 7,
    }
    parsed = parse_chat(body, default_max_tokens=16)
    assert parsed.messages == [{"role": "user", "content": "ab"}]
    assert parsed.options.params.max_tokens == 7


def test_an_unknown_field_is_refused_by_name_and_harmless_ones_are_not() -> None:
    with pytest.raises(InvalidRequest, match=r"^guided_json is not a field pdsim supports"):
        parse_completion({"prompt": "hi", "guided_json": {"type": "object"}}, default_max_tokens=16)
    for name in HARMLESS_FIELDS:
        parse_chat({"messages": [{"role": "user", "content": "x"}], name: "x"}, default_max_tokens=16)
