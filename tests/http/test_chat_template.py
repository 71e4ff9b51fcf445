"""The router renders chat templates as transformers does, without importing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from pdsim.core.errors import InvalidRequest
from pdsim.models.presets import ensure_preset
from router.http.chat_template import ChatTemplate

CONVERSATIONS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "Hello"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Two\nlines, ünïcode ✓"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ],
]
# A template in the older place (tokenizer_config.json) that uses the special tokens and refuses bad input.
OLD_STYLE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}"
    "[{{ m['role'] }}] {{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_the_preset_template_renders_as_transformers_renders_it(messages: list[dict[str, Any]]) -> None:
    directory = ensure_preset("tiny")
    template = ChatTemplate.load(directory)
    assert template is not None
    expected = AutoTokenizer.from_pretrained(directory).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert template.render(messages) == expected


def test_a_template_in_tokenizer_config_with_special_tokens(tmp_path: Path) -> None:
    config = {"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": OLD_STYLE}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    template = ChatTemplate.load(tmp_path)
    assert template is not None
    assert template.render([{"role": "user", "content": "hi"}]) == "<s>[user] hi</s>\n[assistant] "
    with pytest.raises(InvalidRequest, match="refused them: no tools"):
        template.render([{"role": "tool", "content": "x"}])


def test_no_template_is_none(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    assert ChatTemplate.load(tmp_path) is None
