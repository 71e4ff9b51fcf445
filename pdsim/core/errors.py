"""Errors that cross a component boundary, each tied to the status a client should see.

The engine and the codec raise these; only `pdsim.rpc.status` maps them to gRPC status codes, so nothing
below the servicers imports grpc.
"""

from __future__ import annotations


class PdsimError(Exception):
    """Base class; `code` names the gRPC status the error maps to."""

    code = "INTERNAL"


class InvalidRequest(PdsimError):
    """The request itself is wrong: a bad parameter, an empty prompt, a malformed KV stream."""

    code = "INVALID_ARGUMENT"


class AlreadyExists(PdsimError):
    """A request with this id is already in flight on the node."""

    code = "ALREADY_EXISTS"


class ResourceExhausted(PdsimError):
    """The node is full (KV space or queue); another node, or a later retry, may succeed."""

    code = "RESOURCE_EXHAUSTED"


class NotFound(PdsimError):
    """The request names something the node does not hold, e.g. KV that expired or never arrived."""

    code = "NOT_FOUND"


class DataLoss(PdsimError):
    """Bytes were corrupted or lost in transit (a checksum mismatch, a truncated stream)."""

    code = "DATA_LOSS"


class FailedPrecondition(PdsimError):
    """The request cannot run on this node as configured, e.g. KV computed by a different model."""

    code = "FAILED_PRECONDITION"


class Aborted(PdsimError):
    """The request was cancelled while this node worked on it (e.g. its KV was released before it arrived)."""

    code = "ABORTED"


class DeadlineExceeded(PdsimError):
    """The request's deadline passed before it could be served."""

    code = "DEADLINE_EXCEEDED"


class Unavailable(PdsimError):
    """No node can serve the request right now."""

    code = "UNAVAILABLE"
