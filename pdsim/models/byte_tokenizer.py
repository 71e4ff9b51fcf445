"""A byte-level tokenizer built with the `tokenizers` library: one token per byte, plus three specials.

It needs no training data and round-trips any text exactly, which is all the generated presets need. A prompt may
use every byte, but a preset only ever generates the printable ASCII characters and EOS (`suppressed_token_ids`
lists the rest for the model's `generation_config.suppress_tokens`): each generated token then decodes on its own
to exactly one character, so a client that counts chunks, characters or re-tokenized text counts the server's
tokens, and every token streams as its own event.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from pdsim.core.preset_shapes import BYTE_VOCAB_SIZE, NUM_BYTE_TOKENS

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
VOCAB_SIZE = BYTE_VOCAB_SIZE  # byte b has id b; the specials follow
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


def build_byte_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {char: byte for byte, char in _byte_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([BOS, EOS, PAD])
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped
