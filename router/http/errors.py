"""pdsim errors as OpenAI error responses: `{"error": {"message", "type", "param", "code"}}` and an HTTP status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pdsim.core.errors import PdsimError

# By the gRPC status name a pdsim error carries. FAILED_PRECONDITION means this request can never run on this
# cluster (e.g. its KV can never fit a decode node): the client must change it, as for any other 400.
_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
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
