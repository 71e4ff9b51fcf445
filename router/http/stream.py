"""Writing one request's pieces as an OpenAI response: the whole body, or server-sent events ending in [DONE]
(an error after the status line travels as an event, as vLLM sends it). Logprobs and pdsim's timeline are added
when the request asked for them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from pdsim.core.errors import PdsimError
from router.frontend import Admitted, Piece
from router.http.errors import HttpError, http_error
from router.http.openai_schema import REQUEST_FIELDS, Options
from router.http.responses import DONE, Shape, ShownLogprobs, Usage, shown_logprobs, sse_event, with_timeline

log = logging.getLogger(__name__)


async def whole_response(
    admitted: Admitted,
    pieces: AsyncIterator[Piece],
    shape: Shape,
    timeline: bool,
    text_of: Callable[[int], str],
) -> web.Response:
    texts: list[str] = []
    shown: list[ShownLogprobs] | None = [] if admitted.routed.params.logprobs is not None else None
    last: Piece | None = None
    async for last in pieces:
        texts.append(last.text)
        if shown is not None:
            shown += shown_logprobs(last.token_ids, last.logprobs, text_of)
    assert last is not None and last.finish_reason is not None, "a stream ends with a finish reason"
    usage = Usage(len(admitted.routed.prompt_ids), last.completion_tokens)
    body = shape.whole("".join(texts), last.finish_reason, usage, shown)
    return web.json_response(with_timeline(body, last.timeline) if timeline else body)


async def event_stream(
    request: web.Request,
    admitted: Admitted,
    first: Piece,
    pieces: AsyncIterator[Piece],
    shape: Shape,
    options: Options,
    text_of: Callable[[int], str],
) -> web.StreamResponse:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    last = first
    asked = admitted.routed.params.logprobs is not None
    try:
        for chunk in shape.opening():
            await response.write(sse_event(chunk))
        piece: Piece | None = first
        while piece is not None:
            last = piece
            if asked:  # every token's logprobs, even those whose text is still mid-character
                chunk = shape.chunk(
                    piece.text, piece.finish_reason, shown_logprobs(piece.token_ids, piece.logprobs, text_of)
                )
                await response.write(sse_event(with_timeline(chunk, piece.timeline) if options.timeline else chunk))
            elif piece.text or piece.finish_reason is not None:  # no empty chunks mid-character
                chunk = shape.chunk(piece.text, piece.finish_reason)
                await response.write(sse_event(with_timeline(chunk, piece.timeline) if options.timeline else chunk))
            piece = await anext(pieces, None)
        if options.include_usage:
            usage = Usage(len(admitted.routed.prompt_ids), last.completion_tokens)
            await response.write(sse_event(shape.usage_chunk(usage)))
    except PdsimError as error:  # the status line is gone: the error travels as an event, as vLLM sends it
        await response.write(sse_event(http_error(error, REQUEST_FIELDS).body()))
    except ConnectionResetError:
        log.debug("client of %s went away", admitted.routed.request_id)
        return response  # leaving closes the stream, which cancels the request on the nodes
    except Exception as error:  # a bug still ends the stream with an error event and [DONE], never mid-air
        log.exception("stream of %s failed", admitted.routed.request_id)
        await response.write(sse_event(HttpError(500, f"internal error: {type(error).__name__}").body()))
    await response.write(DONE)
    await response.write_eof()
    return response
