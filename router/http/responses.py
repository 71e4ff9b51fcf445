"""OpenAI response bodies and stream chunks, for text completions and chat completions.

One `Shape` per endpoint builds every JSON object a request answers with, so the streamed chunks and the whole
response of one request share an id, a creation time and a model name.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pdsim.core.requests import FinishReason
from pdsim.core.timeline import Timeline


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict[str, int]:
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


def _reason(finish: FinishReason | None) -> str | None:
    return None if finish is None else finish.value  # "stop" or "length", as OpenAI names them


class Shape:
    """The envelope both endpoints share; subclasses fill in the choices."""

    object_name = ""
    chunk_object_name = ""
    id_prefix = ""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.id = f"{self.id_prefix}-{request_id}"
        self.created = int(time.time())
        self.model = model
        self._include_usage = include_usage  # then every chunk has a usage field, null but in the last

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}

    def whole(self, text: str, finish: FinishReason | None, usage: Usage) -> dict[str, Any]:
        return self._envelope(self.object_name, [self._choice(text, finish)]) | {"usage": usage.to_json()}

    def opening(self) -> list[dict[str, Any]]:
        """Chunks sent before the first token's."""
        return []

    def chunk(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        chunk = self._envelope(self.chunk_object_name, [self._delta(text, finish)])
        return chunk | {"usage": None} if self._include_usage else chunk

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The last chunk when the client asked for usage: no choices."""
        return self._envelope(self.chunk_object_name, []) | {"usage": usage.to_json()}

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        raise NotImplementedError

    def _delta(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        raise NotImplementedError


class TextShape(Shape):
    object_name = chunk_object_name = "text_completion"
    id_prefix = "cmpl"

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": _reason(finish)}

    _delta = _choice


class ChatShape(Shape):
    object_name = "chat.completion"
    chunk_object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl"

    def _choice(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        return {"index": 0, "message": message, "logprobs": None, "finish_reason": _reason(finish)}

    def opening(self) -> list[dict[str, Any]]:
        chunk = self._envelope(self.chunk_object_name, [self._delta_of({"role": "assistant", "content": ""}, None)])
        return [chunk | {"usage": None} if self._include_usage else chunk]

    def _delta(self, text: str, finish: FinishReason | None) -> dict[str, Any]:
        return self._delta_of({"content": text} if text or finish is None else {}, finish)

    @staticmethod
    def _delta_of(delta: dict[str, str], finish: FinishReason | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": _reason(finish)}


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
