"""A byte-level tokenizer built with the `tokenizers` library: one token per byte, plus three specials.

It needs no training data and round-trips any text exactly, which is all the generated presets need. A prompt may
use every byte, but a preset only ever generates the printable ASCII characters and EOS (`suppressed_token_ids`
lists the rest for the model's `generation_config.suppress_tokens`): each generated token then decodes on its own
to exactly one character, so a client that counts chunks, characters or re-tokenized text counts the server's
tokens, and every token streams as its own event.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from pdsim.core.preset_shapes import BYTE_VOCAB_SIZE, NUM_BYTE_TOKENS

if TYPE_CHECKING:  # transformers loads only to build a preset; an emulated node writes the tokenizer without it
    from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
VOCAB_SIZE = BYTE_VOCAB_SIZE  # byte b has id b; the specials follow
BOS_ID, EOS_ID, PAD_ID = NUM_BYTE_TOKENS, NUM_BYTE_TOKENS + 1, NUM_BYTE_TOKENS + 2
GENERATED_BYTES = range(0x20, 0x7F)  # printable ASCII, space included: one character per token

# A plain role-tagged template so chat requests work on the generated models.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, which the ByteLevel pre-tokenizer uses."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(NUM_BYTE_TOKENS):
        if b not in mapping:
            mapping[b] = chr(NUM_BYTE_TOKENS + extra)
            extra += 1
    return mapping


def suppressed_token_ids(eos_token_id: int) -> list[int]:
    """Every id a preset never generates: control and non-ASCII bytes (alone they are no character) and the
    specials other than EOS."""
    return [i for i in range(VOCAB_SIZE) if i not in GENERATED_BYTES and i != eos_token_id]


def _raw_byte_tokenizer() -> Tokenizer:
    vocab = {char: byte for byte, char in _byte_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([BOS, EOS, PAD])
    return tokenizer


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=_raw_byte_tokenizer(), bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def ensure_byte_tokenizer(models_dir: Path | None = None) -> Path:
    """A directory holding only the byte tokenizer's files (tokenizer.json, its specials and chat template), for
    the router to tokenize with when the nodes serve an emulated model; written with `tokenizers` alone."""
    from pdsim.models.presets import default_models_dir

    target = (models_dir or default_models_dir()) / "byte-tokenizer"
    if (target / "tokenizer.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".byte-tokenizer-", dir=target.parent))
    _raw_byte_tokenizer().save(str(staging / "tokenizer.json"))
    (staging / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    specials = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    (staging / "tokenizer_config.json").write_text(json.dumps(specials, indent=2) + "\n")
    try:
        os.rename(staging, target)  # atomic: concurrent writers never show half a directory
    except OSError:  # another process wrote it first
        for entry in staging.iterdir():
            entry.unlink()
        staging.rmdir()
    return target
