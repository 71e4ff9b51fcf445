"""OpenAI request bodies (completions and chat completions) parsed into pdsim's terms.

Each field is checked for its JSON type here, and the `InvalidRequest` names it; the values themselves
(temperature >= 0, max_tokens > 0, the context length...) are checked by `Frontend.admit`, with the same
rules and messages as the gRPC front. Options that pdsim cannot honour (n > 1, tools, penalties) are refused
rather than ignored, and so is every field it does not know, unless `HARMLESS_FIELDS` lists it: a silently
ignored option would make a client measure something other than what it asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pdsim.core.errors import InvalidRequest
from pdsim.core.requests import MAX_LOGPROBS, SamplingParams, validate_text

MAX_STOP_STRINGS = 16
MAX_STOP_CHARS = 256
# OpenAI's default temperature (pdsim's gRPC API defaults to greedy; this API follows OpenAI).
DEFAULT_TEMPERATURE = 1.0

Prompt = str | list[int]
Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class Options:
    """What both endpoints share besides the prompt."""

    model: str | None
    params: SamplingParams
    stop: tuple[str, ...] = ()
    include_stop_str_in_output: bool = False  # vLLM's: keep the stop string (or stop token's text) in the text
    stream: bool = False
    include_usage: bool = False
    request_class: str = ""  # pdsim's extension: the SLO class the router's metrics count it under
    timeline: bool = False  # pdsim's extension (`pdsim_timeline`): the last chunk carries the request's timeline


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    prompt: Prompt
    options: Options


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[Message]
    options: Options


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Options pdsim does not implement, each with the one value that means "not used".
_UNSUPPORTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n": (lambda v: v == 1, "n must be 1: pdsim returns one choice per request"),
    "best_of": (lambda v: v == 1, "best_of must be 1: pdsim returns one choice per request"),
    "echo": (lambda v: v is False, "echo is not supported"),
    "suffix": (lambda v: v == "", "suffix is not supported"),
    "presence_penalty": (lambda v: v == 0, "presence_penalty is not supported (only 0)"),
    "frequency_penalty": (lambda v: v == 0, "frequency_penalty is not supported (only 0)"),
    "repetition_penalty": (lambda v: v == 1, "repetition_penalty is not supported (only 1)"),
    "logit_bias": (lambda v: v == {}, "logit_bias is not supported"),
    "tools": (lambda v: v == [], "tools are not supported"),
    "tool_choice": (lambda v: v == "none", "tool_choice is not supported"),
    "functions": (lambda v: v == [], "functions are not supported"),
    "function_call": (lambda v: v == "none", "function_call is not supported"),
    "response_format": (lambda v: v == {"type": "text"}, "response_format is not supported (only text)"),
    "skip_special_tokens": (lambda v: v is True, "skip_special_tokens must be true: special tokens are skipped"),
}

# Accepted and ignored: they change nothing pdsim computes or returns (end-user ids, bookkeeping for stored
# completions, scheduling hints), so refusing them would only break clients.
HARMLESS_FIELDS = frozenset({"user", "metadata", "store", "service_tier", "parallel_tool_calls", "priority"})


class _Body:
    """Typed access to a request body; null counts as absent, as in OpenAI's API."""

    def __init__(self, body: object) -> None:
        if not isinstance(body, dict):
            raise InvalidRequest(f"the request body must be a JSON object, got {type(body).__name__}")
        self.raw: dict[str, Any] = body

    def get(self, name: str, check: Callable[[object], bool], kind: str) -> Any:
        value = self.raw.get(name)
        if value is not None and not check(value):
            raise InvalidRequest(f"{name} must be {kind}, got {value!r}")
        return value

    def integer(self, name: str) -> int | None:
        value: int | None = self.get(name, _is_int, "an integer")
        return value

    def number(self, name: str) -> float | None:
        value: float | None = self.get(name, _is_number, "a number")
        return None if value is None else float(value)

    def boolean(self, name: str) -> bool:
        return bool(self.get(name, lambda v: isinstance(v, bool), "true or false"))

    def string(self, name: str) -> str | None:
        value: str | None = self.get(name, lambda v: isinstance(v, str), "a string")
        if value is not None:
            validate_text(name, value)
        return value

    def refuse_unsupported(self, known: frozenset[str]) -> None:
        unknown = sorted(k for k, v in self.raw.items() if v is not None and k not in known)
        if unknown:
            raise InvalidRequest(f"{unknown[0]} is not a field pdsim supports; it would be ignored, so it is refused")
        for name, (is_default, message) in _UNSUPPORTED.items():
            value = self.raw.get(name)
            if value is not None and not is_default(value):
                raise InvalidRequest(f"{message}, got {value!r}")


def _options(
    body: _Body, default_max_tokens: int, max_tokens_names: tuple[str, ...], logprobs: int | None = None
) -> Options:
    body.refuse_unsupported(REQUEST_FIELDS)
    max_tokens = next((v for v in map(body.integer, max_tokens_names) if v is not None), None)
    temperature = body.number("temperature")
    top_p = body.number("top_p")
    top_k = body.integer("top_k")  # vLLM's extension; -1 disables it there, 0 here
    stop = body.get("stop", lambda v: isinstance(v, str) or _is_list_of(v, str), "a string or a list of strings")
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if not all(stop):
        raise InvalidRequest("stop strings must be non-empty")
    for text in stop:
        validate_text("stop", text)
    if len(stop) > MAX_STOP_STRINGS or max(map(len, stop), default=0) > MAX_STOP_CHARS:
        # Every piece of text is matched against each of them: keep that per-token work bounded.
        raise InvalidRequest(f"stop takes at most {MAX_STOP_STRINGS} strings of at most {MAX_STOP_CHARS} characters")
    stream_options = body.get("stream_options", lambda v: isinstance(v, dict), "an object") or {}
    if stream_options and body.get("stream", lambda v: isinstance(v, bool), "true or false") is not True:
        raise InvalidRequest("stream_options is only allowed when stream is true")
    include_usage = stream_options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise InvalidRequest(f"stream_options.include_usage must be true or false, got {include_usage!r}")
    params = SamplingParams(
        temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        top_k=0 if top_k is None or top_k == -1 else top_k,
        seed=body.integer("seed"),
        max_tokens=default_max_tokens if max_tokens is None else max_tokens,
        ignore_eos=body.boolean("ignore_eos"),
        min_p=body.number("min_p") or 0.0,
        min_tokens=body.integer("min_tokens") or 0,
        stop_token_ids=tuple(body.get("stop_token_ids", lambda v: _is_list_of(v, int), "a list of token ids") or ()),
        logprobs=logprobs,
    )
    return Options(
        model=body.string("model"),
        params=params,
        stop=stop,
        include_stop_str_in_output=body.boolean("include_stop_str_in_output"),
        stream=body.boolean("stream"),
        include_usage=bool(include_usage),
        request_class=body.string("request_class") or "",
        timeline=body.boolean("pdsim_timeline"),
    )


def _is_list_of(value: object, kind: type) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)


def parse_completion(raw: object, default_max_tokens: int) -> CompletionRequest:
    """A /v1/completions body: the prompt is text or token ids (a batch of one is accepted too)."""
    body = _Body(raw)
    prompt = body.raw.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one prompt
    if prompt is None:
        raise InvalidRequest("prompt is missing")
    if isinstance(prompt, list) and prompt and all(isinstance(p, str | list) for p in prompt):
        raise InvalidRequest(f"prompt: batches are not supported, send one prompt per request (got {len(prompt)})")
    if not isinstance(prompt, str) and not _is_list_of(prompt, int):
        raise InvalidRequest("prompt must be a string or a list of token ids")
    if isinstance(prompt, str):
        validate_text("prompt", prompt)
    if body.raw.get("top_logprobs") is not None:
        raise InvalidRequest("top_logprobs is a chat completions field: /v1/completions takes logprobs=k")
    logprobs = body.integer("logprobs")  # k alternatives per token; 0 gives the sampled token's logprob only
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise InvalidRequest(f"logprobs must be in [0, {MAX_LOGPROBS}], got {logprobs}")
    return CompletionRequest(prompt, _options(body, default_max_tokens, ("max_tokens",), logprobs))


def parse_chat(raw: object, default_max_tokens: int) -> ChatRequest:
    """A /v1/chat/completions body; `max_completion_tokens` is the newer name of `max_tokens`."""
    body = _Body(raw)
    messages = body.raw.get("messages")
    if messages is None:
        raise InvalidRequest("messages is missing")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list")
    parsed = [_message(i, m) for i, m in enumerate(messages)]
    top = body.integer("top_logprobs")
    if top is not None and not body.boolean("logprobs"):
        raise InvalidRequest(f"top_logprobs needs logprobs: true, got top_logprobs={top}")
    if top is not None and not 0 <= top <= MAX_LOGPROBS:
        raise InvalidRequest(f"top_logprobs must be in [0, {MAX_LOGPROBS}], got {top}")
    logprobs = (top or 0) if body.boolean("logprobs") else None
    names = ("max_completion_tokens", "max_tokens")
    return ChatRequest(parsed, _options(body, default_max_tokens, names, logprobs))


def _message(index: int, message: object) -> Message:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise InvalidRequest(f"{where} must be an object with a role and content")
    role = message.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidRequest(f"{where}.role must be a non-empty string, got {role!r}")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(_text_part(f"{where}.content[{j}]", part) for j, part in enumerate(content))
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise InvalidRequest(f"{where}.content must be a string or a list of text parts, got {content!r}")
    validate_text(f"{where}.role", role)
    validate_text(f"{where}.content", content)
    out = {"role": role, "content": content}
    name = message.get("name")
    if isinstance(name, str):
        validate_text(f"{where}.name", name)
        out["name"] = name
    return out


def _text_part(where: str, part: object) -> str:
    if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
        kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
        raise InvalidRequest(f"{where}: only text parts are supported, got {kind!r}")
    return str(part["text"])


REQUEST_FIELDS = frozenset(
    {"model", "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed"}
    | {"stop", "stream", "stream_options", "ignore_eos", "request_class", "min_p", "min_tokens", "stop_token_ids"}
    | {"include_stop_str_in_output", "pdsim_timeline", "logprobs", "top_logprobs", *_UNSUPPORTED, *HARMLESS_FIELDS}
)
