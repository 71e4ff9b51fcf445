"""Errors reach clients without the cluster's addresses or paths, and a bad request's message still starts with
the field it is about."""

from __future__ import annotations

import pytest

from pdsim.core.errors import InvalidRequest, PdsimError, ResourceExhausted, Unavailable
from router.client_errors import ErrorScrubber

SCRUBBER = ErrorScrubber.for_nodes(
    {"prefill": ["127.0.0.1:50061"], "decode": ["127.0.0.1:5007", "node-7.internal:50071"]},
    paths=["/srv/models/llama", "models/llama"],
)


@pytest.mark.parametrize(
    ("raw", "public"),
    [
        (
            "no prefill node could take the request: 127.0.0.1:50061: UNAVAILABLE failed to connect to all "
            "addresses; last error: UNKNOWN: ipv4:127.0.0.1:50061: Connection refused",
            "no prefill node could take the request: prefill-0: UNAVAILABLE failed to connect to all "
            "addresses; last error: UNKNOWN: prefill-0: Connection refused",
        ),
        (
            "prefill node 127.0.0.1:50061: decode node 127.0.0.1:5007 refused the KV: no room for 60 tokens",
            "prefill node prefill-0: decode node decode-1 refused the KV: no room for 60 tokens",
        ),
        ("decode node node-7.internal:50071: gone", "decode node decode-2: gone"),
        ("KV from /srv/models/llama and models/llama differ", "KV from <path> and <path> differ"),
        (
            "to 10.1.2.3:9999 or [fe80::1%eth0]:80 or ipv6:[::1]:1 or db.example.com:5432",
            "to <address> or <address> or <address> or <address>",
        ),
        ("read /var/lib/pdsim/x.json; unix:/run/pdsim.sock", "read <path>; unix:<path>"),
        ("max_tokens (4) plus the prompt (10 tokens) exceeds the model's context of 1024 tokens", None),
    ],
)
def test_addresses_and_paths_are_taken_out(raw: str, public: str | None) -> None:
    assert SCRUBBER.message(raw) == (raw if public is None else public)


def test_a_bad_request_found_by_a_node_names_its_field_first_and_keeps_its_status() -> None:
    found = SCRUBBER.public(InvalidRequest("worker 127.0.0.1:50061: top_p must be in (0, 1], got 0.0"))
    assert type(found) is InvalidRequest and str(found) == "top_p must be in (0, 1], got 0.0"
    nested = InvalidRequest("prefill node 127.0.0.1:50061: decode node 10.0.0.9:1 refused the KV: bad header")
    assert str(SCRUBBER.public(nested)) == "bad header"
    for error in (ResourceExhausted("decode node 127.0.0.1:5007: full"), Unavailable("x"), PdsimError("y")):
        public = SCRUBBER.public(error)
        assert type(public) is type(error) and "127.0.0.1" not in str(public)
