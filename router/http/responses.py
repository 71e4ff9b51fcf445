"""OpenAI response bodies and stream chunks, for text completions and chat completions.

One `Shape` per endpoint builds every JSON object a request answers with, so the streamed chunks and the whole
response of one request share an id, a creation time and a model name.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdsim.core.requests import FinishReason, TokenLogprobs
from pdsim.core.timeline import Timeline


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


@dataclass(frozen=True, slots=True)
class ShownLogprobs:
    """One token's logprobs with its and its alternatives' texts: what a response shows."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


def shown_logprobs(
    token_ids: Sequence[int], logprobs: Sequence[TokenLogprobs], text_of: Callable[[int], str]
) -> list[ShownLogprobs]:
    return [
        ShownLogprobs(text_of(t), lp.logprob, tuple((text_of(i), v) for i, v in lp.top))
        for t, lp in zip(token_ids, logprobs, strict=True)
    ]


def _finite(value: float) -> float:
    """JSON has no -inf: a token the model can never produce shows the lowest float, as vLLM clamps it."""
    return value if math.isfinite(value) else -9999.0


def _reason(finish: FinishReason | None) -> str | None:
    return None if finish is None else finish.value  # "stop" or "length", as OpenAI names them


class Shape:
    """The envelope both endpoints share; subclasses fill in the choices."""

    object_name = ""
    chunk_object_name = ""
    id_prefix = ""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.text_offset = 0  # completions' text_offset: where the next token's text begins
        self.id = f"{self.id_prefix}-{request_id}"
        self.created = int(time.time())
        self.model = model
        self._include_usage = include_usage  # then every chunk has a usage field, null but in the last

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}

    def whole(
        self, text: str, finish: FinishReason | None, usage: Usage, logprobs: list[ShownLogprobs] | None = None
    ) -> dict[str, Any]:
        choice = self._choice(text, finish) | {"logprobs": self._logprobs(logprobs)}
        return self._envelope(self.object_name, [choice]) | {"usage": usage.to_json()}

    def opening(self) -> list[dict[str, Any]]:
        """Chunks sent before the first token's."""
        return []

    def chunk(
        self, text: str, finish: FinishReason | None, logprobs: list[ShownLogprobs] | None = None
    ) -> dict[str, Any]:
        delta = self._delta(text, finish) | {"logprobs": self._logprobs(logprobs)}
        chunk = self._envelope(self.chunk_object_name, [delta])
        return chunk | {"usage": None} if self._include_usage else chunk

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The last chunk when the client asked for usage: no choices."""
        return self._envelope(self.chunk_object_name, []) | {"usage": usage.to_json()}

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        raise NotImplementedError

    def _logprobs(self, logprobs: list[ShownLogprobs] | None) -> dict[str, Any] | None:
        """The choice's `logprobs` object; None (null) when the request did not ask for them."""
        raise NotImplementedError

    def _delta(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        raise NotImplementedError


class TextShape(Shape):
    object_name = chunk_object_name = "text_completion"
    id_prefix = "cmpl"

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": _reason(finish)}

    _delta = _choice

    def _logprobs(self, logprobs: list[ShownLogprobs] | None) -> dict[str, Any] | None:
        if logprobs is None:
            return None
        offsets = []
        for entry in logprobs:
            offsets.append(self.text_offset)
            self.text_offset += len(entry.token)
        return {
            "tokens": [e.token for e in logprobs],
            "token_logprobs": [_finite(e.logprob) for e in logprobs],
            # As OpenAI and vLLM: the k likeliest and always the sampled token (up to k+1; logprobs=0 gives just it)
            "top_logprobs": [{t: _finite(v) for t, v in e.top} | {e.token: _finite(e.logprob)} for e in logprobs],
            "text_offset": offsets,
        }


class ChatShape(Shape):
    object_name = "chat.completion"
    chunk_object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        return {"index": 0, "message": message, "logprobs": None, "finish_reason": _reason(finish)}

    def _logprobs(self, logprobs: list[ShownLogprobs] | None) -> dict[str, Any] | None:
        if logprobs is None:
            return None
        return {
            "content": [
                _token(e.token, e.logprob) | {"top_logprobs": [_token(t, v) for t, v in e.top]} for e in logprobs
            ]
        }

    def opening(self) -> list[dict[str, Any]]:
        chunk = self._envelope(self.chunk_object_name, [self._delta_of({"role": "assistant", "content": ""}, None)])
        return [chunk | {"usage": None} if self._include_usage else chunk]

    def _delta(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        return self._delta_of({"content": text} if text or finish is None else {}, finish)

    @staticmethod
    def _delta_of(delta: dict[str, str], finish: FinishReason | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": _reason(finish)}


def _token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": _finite(logprob), "bytes": list(text.encode())}


def with_timeline(body: dict[str, Any], timeline: Timeline | None) -> dict[str, Any]:
    """`body` with pdsim's extension object: `{"pdsim": {"timeline": ...}}` (when there is a timeline)."""
    if timeline is None:
        return body
    shown: dict[str, Any] = {"seconds": dict(timeline.seconds), "nodes": list(timeline.nodes)}
    shown |= {"kv_bytes": timeline.kv_bytes, "kv_chunks": timeline.kv_chunks} if timeline.kv_bytes else {}
    return body | {"pdsim": {"timeline": shown}}


def sse_event(data: dict[str, Any] | str) -> bytes:
    """One server-sent event; a dict is sent as JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


DONE = sse_event("[DONE]")
