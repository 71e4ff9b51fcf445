"""pdsim errors as OpenAI error responses: `{"error": {"message", "type", "param", "code"}}` and an HTTP status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pdsim.core.errors import PdsimError

# By the gRPC status name a pdsim error carries. FAILED_PRECONDITION means this request can never run on this
# cluster (e.g. its KV can never fit a decode node): the client must change it, as for any other 400. A full
# cluster is 503 with Retry-After, as for one with no node to serve: the server is out of room, not the client
# over a rate limit (429), and clients such as the openai SDK wait the Retry-After before trying again.
_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "RESOURCE_EXHAUSTED": 503,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
RETRY_AFTER_SECONDS = 1  # what a 503 asks the client to wait: nodes return to rotation within about a second
_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}
# Validation messages begin with the field they are about ("max_tokens must be > 0, got -1").
_LEADING_FIELD = re.compile(r"^([a-z_]+)(?=[\s\[.:(]|$)")


@dataclass(eq=False)  # not frozen: raising sets attributes such as __traceback__ on an exception
class HttpError(Exception):
    status: int
    message: str
    param: str | None = None
    code: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)} if self.status == 503 else {}

    def body(self) -> dict[str, Any]:
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def http_error(error: PdsimError, fields: frozenset[str], rename: dict[str, str] | None = None) -> HttpError:
    """The response for `error`; `param` is the request field its message names, if it is one of `fields`
    (`rename` maps pdsim's name to the API's, e.g. a chat request's prompt is its messages)."""
    status = _STATUS.get(error.code, 500)
    message = str(error)
    match = _LEADING_FIELD.match(message)
    param = None
    if status == 400 and match is not None:
        name = (rename or {}).get(match.group(1), match.group(1))
        param = name if name in fields else None
    return HttpError(status, message, param, error.code.lower())


def model_not_found(model: str) -> HttpError:
    return HttpError(404, f"The model `{model}` does not exist.", "model", "model_not_found")
