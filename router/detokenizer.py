"""Text from a token stream, emitted only when complete: a byte-level token may end mid-character."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tokenizers import Tokenizer

REPLACEMENT_CHAR = "\ufffd"
# No token covers less than one character, which UTF-8 spells in up to 4 bytes (a byte-fallback or unknown token).
MIN_TOKEN_BYTES = 4


class RouterTokenizer:
    """Encodes prompts and decodes tokens with the model's `tokenizer.json` (no torch, no transformers)."""

    def __init__(self, directory: Path) -> None:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ValueError(f"no tokenizer.json in {directory}: pass --tokenizer DIR to the router")
        self._tokenizer = Tokenizer.from_file(str(path))
        vocab = self._tokenizer.get_vocab(with_added_tokens=True)
        # The most text one token can stand for: a prompt longer than the context times this cannot fit, and is
        # refused before it is tokenized. A vocabulary entry spells its text in at least as many UTF-8 bytes
        # (byte-level vocabularies spell each byte as one character of one or two bytes).
        self.max_token_bytes = max(MIN_TOKEN_BYTES, *(len(t.encode("utf-8", "surrogatepass")) for t in vocab))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; a rendered chat template already holds its special tokens (no second BOS).

        Through `encode_batch`, which releases the GIL while it tokenizes (`encode` holds it: a 1 MB prompt
        stalled every other thread for 0.6 s), so a prompt tokenized on a worker thread stalls no one."""
        (encoding,) = self._tokenizer.encode_batch([text], add_special_tokens=add_special_tokens)
        ids: list[int] = encoding.ids  # a new list each time
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def token_text(self, token_id: int) -> str:
        """One token's own text, special tokens included (how logprobs name a token)."""
        return str(self._tokenizer.decode([token_id], skip_special_tokens=False))


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
