"""Text from a token stream, emitted only when complete: a byte-level token may end mid-character."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tokenizers import Tokenizer

REPLACEMENT_CHAR = "\ufffd"


class RouterTokenizer:
    """Encodes prompts and decodes tokens with the model's `tokenizer.json` (no torch, no transformers)."""

    def __init__(self, directory: Path) -> None:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ValueError(f"no tokenizer.json in {directory}: pass --tokenizer DIR to the router")
        self._tokenizer = Tokenizer.from_file(str(path))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; a rendered chat template already holds its special tokens (no second BOS)."""
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))


class IncrementalDetokenizer:
    """Decodes a growing token list, returning only the new, complete text each time."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # tokens before this are emitted and need no re-decoding context
        self._read = 0  # tokens before this are emitted

    def add(self, ids: Sequence[int]) -> str:
        self._ids.extend(ids)
        emitted = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        if len(text) <= len(emitted) or text.endswith(REPLACEMENT_CHAR):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(emitted) :]

    def flush(self) -> str:
        """Whatever is left at the end, incomplete characters included."""
        emitted = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return text[len(emitted) :]
