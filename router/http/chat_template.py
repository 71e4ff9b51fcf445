"""A model's chat template, rendered with Jinja2 as Hugging Face tokenizers render it, without transformers.

The template comes from the checkpoint's tokenizer files: `chat_template.jinja` (what transformers 5 writes, and
what pdsim's presets ship), else the `chat_template` entry of `tokenizer_config.json`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pdsim.core.errors import InvalidRequest

log = logging.getLogger(__name__)


def _raise(message: str) -> None:
    # Templates call raise_exception() to refuse a conversation they cannot format (e.g. roles out of order).
    raise InvalidRequest(f"messages: the model's chat template refused them: {message}")


def _strftime_now(format: str) -> str:
    return datetime.now().strftime(format)


def _token_text(value: object) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict (older files)."""
    if isinstance(value, Mapping):
        value = value.get("content", "")
    return value if isinstance(value, str) else ""


class ChatTemplate:
    def __init__(self, source: str, special_tokens: Mapping[str, str]) -> None:
        # The settings transformers renders with, so a template formats here exactly as it does there.
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        environment.globals["raise_exception"] = _raise
        environment.globals["strftime_now"] = _strftime_now
        self._template = environment.from_string(source)
        self._special_tokens = dict(special_tokens)

    @classmethod
    def load(cls, directory: Path) -> ChatTemplate | None:
        """The template in a checkpoint's tokenizer files; None when it has none."""
        config_path = directory / "tokenizer_config.json"
        config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
        template_path = directory / "chat_template.jinja"
        source: object = template_path.read_text() if template_path.is_file() else config.get("chat_template")
        if isinstance(source, list):  # named templates: the default one serves chat
            source = next(
                (t.get("template") for t in source if isinstance(t, dict) and t.get("name") == "default"), None
            )
        if not isinstance(source, str) or not source:
            return None
        names = ("bos_token", "eos_token", "pad_token", "unk_token")
        try:
            return cls(source, {name: _token_text(config.get(name)) for name in names})
        except TemplateError as error:  # serve everything else; chat requests then get a 400 saying why
            log.warning("the chat template in %s does not compile (%s): chat completions are off", directory, error)
            return None

    def render(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The prompt text for `messages`, ending where the assistant's reply begins."""
        try:
            return self._template.render(messages=list(messages), add_generation_prompt=True, **self._special_tokens)
        except TemplateError as error:
            raise InvalidRequest(f"messages: the model's chat template failed on them: {error}") from error
