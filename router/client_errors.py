"""What a client may read of an error: the router's edge takes internal addresses and filesystem paths out.

Errors from the nodes name where they happened ("decode node 10.0.0.7:50071: ...", gRPC's "ipv4:...: Connection
refused", a checkpoint's path), which helps an operator and tells a client about the cluster's insides. Both fronts
hand clients `ErrorScrubber.public(error)`; the router logs the original. A node the router knows is named as the
launcher names it (`prefill-0`, `decode-1`); any other address is `<address>`, any path `<path>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pdsim.core.errors import InvalidRequest, PdsimError

_SCHEME = r"(?:(?:ipv4|ipv6|dns|unix|unix-abstract):(?://)?)?"
_ADDRESSES = re.compile(
    _SCHEME
    + "(?:"
    + "|".join(
        (
            r"(?:\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b)",  # IPv4, with or without a port
            r"(?:\[[0-9A-Fa-f:.%\w]*\](?::\d{1,5})?)",  # [IPv6]:port
            r"(?:\b[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*:\d{2,5}\b)",  # host:port
        )
    )
    + ")"
)
# An absolute path of two or more parts (a lone "/v1" is an API path, not a place on a disk).
_PATHS = re.compile(r"(?<![\w./])/[^\s/:'\"(),;\]\[]+(?:/[^\s/:'\"(),;\]\[]*)+")
# "worker X: " / "prefill node X: " / "decode node X: " (or their refusals' "... refused the KV: "), as the router's
# modes and the prefill node's KV sender prefix a downstream error.
_STAGES = re.compile(r"^(?:(?:worker|prefill node|decode node) \S+(?: refused the KV)?: )+")


class ErrorScrubber:
    def __init__(self, names: Mapping[str, str], paths: Iterable[str] = ()) -> None:
        """`names`: the node addresses the router knows, each with the name clients may see; `paths`: paths to
        hide beyond what looks like one (the model's directory, which may be relative)."""
        # Longest first, so that "host:5001" is replaced before a "host:500" that is a prefix of it.
        self._names = sorted(names.items(), key=lambda item: -len(item[0]))
        self._paths = sorted((p for p in paths if p), key=len, reverse=True)

    @classmethod
    def for_nodes(cls, roles: Mapping[str, Iterable[str]], paths: Iterable[str] = ()) -> ErrorScrubber:
        """Nodes named `<role>-<i>`, numbered across every role in the order given (as the launcher numbers
        its processes)."""
        names: dict[str, str] = {}
        for role, addresses in roles.items():
            for address in addresses:
                names.setdefault(address, f"{role}-{len(names)}")
        return cls(names, paths)

    def message(self, text: str) -> str:
        for path in self._paths:
            text = text.replace(path, "<path>")
        for address, name in self._names:
            text = re.sub(_SCHEME + re.escape(address) + r"(?!\d)", name, text)
        text = _ADDRESSES.sub("<address>", text)
        return _PATHS.sub("<path>", text)

    def public(self, error: PdsimError) -> PdsimError:
        """`error` as a client may see it: the same class (so the same status), its message scrubbed. A bad
        request's message starts with the field it is about, as the router's own do (so the HTTP front can name
        it): where a node found the fault is left out."""
        text = self.message(str(error))
        if isinstance(error, InvalidRequest):
            text = _STAGES.sub("", text)
        return type(error)(text)
