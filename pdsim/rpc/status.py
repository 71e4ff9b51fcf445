"""pdsim errors as gRPC status codes, both ways."""

from __future__ import annotations

import grpc

import pdsim.core.errors as errors
from pdsim.core.errors import PdsimError

_CODES = {code.name: code for code in grpc.StatusCode}


def status_code(error: PdsimError) -> grpc.StatusCode:
    return _CODES.get(error.code, grpc.StatusCode.INTERNAL)


async def abort(context: grpc.aio.ServicerContext, error: PdsimError) -> None:
    """End the RPC with the error's status and message (raises, as `context.abort` does)."""
    await context.abort(status_code(error), str(error))


_ERRORS_BY_CODE = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, PdsimError) and cls is not PdsimError
}


def error_from_rpc(error: grpc.aio.AioRpcError, where: str) -> PdsimError:
    """A downstream RPC's failure as a pdsim error with the same status, its message prefixed by `where`.
    A downstream CANCELLED (that node is shutting down; our own client did not cancel) is UNAVAILABLE."""
    code = error.code()
    if code == grpc.StatusCode.CANCELLED:
        return errors.Unavailable(f"{where}: cancelled ({error.details()})")
    cls = _ERRORS_BY_CODE.get(code.name, PdsimError)
    return cls(f"{where}: {error.details()}")
