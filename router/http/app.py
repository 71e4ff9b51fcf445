"""The HTTP server: OpenAI's /v1/models, /v1/completions and /v1/chat/completions on aiohttp, and the router's
Prometheus `/metrics` on the same port (as vLLM serves them).

It runs on the router's own event loop (uvloop), beside the gRPC server, and serves every request through the
router's `Frontend`, so both APIs share validation, routing, cancellation and metrics. A client that goes away
cancels its handler (aiohttp's handler cancellation), which closes the `Frontend` stream and with it the calls
to the nodes: the decode node frees the request's KV. With an API key, /v1/* asks for it; /metrics and /health
never do. A body past `max_body_bytes` is refused before it is parsed.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from pdsim.core.errors import InvalidRequest, PdsimError
from router.frontend import Frontend
from router.http.chat_template import ChatTemplate
from router.http.errors import HttpError, http_error, model_not_found
from router.http.openai_schema import REQUEST_FIELDS, Options, parse_chat, parse_completion
from router.http.responses import (
    ChatShape,
    Shape,
    TextShape,
)
from router.http.stream import event_stream, whole_response

log = logging.getLogger(__name__)

# The body limit: a body past it is refused (413) before it is parsed on the event loop every request shares.
# A text prompt that fits the context takes at most `Frontend.max_prompt_bytes` bytes; JSON spells a byte in at
# most 6 ("\u001f"), and a token id in at most 8 ("1000000,"), a quarter of a token's 4 or more bytes of text:
# 8 bytes of body per byte of prompt hold any prompt that can fit. Never under 1 MiB, for long conversations.
BODY_BYTES_PER_PROMPT_BYTE = 8
MIN_BODY_BYTES = 1024 * 1024
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Renders the router's metrics registry: (body, content type).
MetricsRenderer = Callable[[], tuple[bytes, str]]


@dataclass(frozen=True, slots=True)
class ServedModel:
    name: str  # what /v1/models lists and requests name
    directory: Path  # the checkpoint, where the chat template is read (never shown to clients)
    max_context: int
    time_dilation: float = 1.0  # emulated nodes' wall seconds per emulated second (NodeInfo.time_dilation)


@web.middleware
async def _openai_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every error in OpenAI's JSON shape, aiohttp's own (unknown path, wrong method) included."""
    try:
        return await handler(request)
    except HttpError as error:
        return web.json_response(error.body(), status=error.status, headers=error.headers())
    except web.HTTPException as error:
        if error.status < 400:
            raise
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None  # a 405 names the methods
        return web.json_response(HttpError(error.status, error.reason).body(), status=error.status, headers=allow)
    except Exception as error:  # a bug must still answer in OpenAI's shape, and be logged
        log.exception("HTTP %s %s failed", request.method, request.path)
        return web.json_response(HttpError(500, f"internal error: {type(error).__name__}").body(), status=500)


def _api_key_check(api_key: str) -> Middleware:
    """A middleware: /v1/* needs "Authorization: Bearer <api_key>", as vLLM's --api-key asks. /metrics and /health
    stay open, so Prometheus and probes need no secret; they show counts, never prompts or text."""
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def check(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith("/v1"):
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):  # in constant time: no guessing the key byte by byte
                message = "a valid API key is needed: send the header 'Authorization: Bearer <key>'"
                error = HttpError(401, message, code="invalid_api_key")
                return web.json_response(error.body(), status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return check


def _fields(body: object) -> frozenset[str]:
    """The fields an error's `param` may name: pdsim's, and the unknown ones this body sent (refused by name)."""
    return REQUEST_FIELDS | frozenset(body) if isinstance(body, dict) else REQUEST_FIELDS


class HttpFront:
    def __init__(
        self,
        frontend: Frontend,
        model: ServedModel,
        metrics: MetricsRenderer | None = None,
        api_key: str | None = None,
    ) -> None:
        self._frontend = frontend
        self._model = model
        self._metrics = metrics
        self._api_key = api_key
        self._chat_template = ChatTemplate.load(model.directory)
        self._started = int(time.time())
        self._runner: web.AppRunner | None = None
        self.address = ""  # host:port once started

    @property
    def max_body_bytes(self) -> int:
        return max(MIN_BODY_BYTES, BODY_BYTES_PER_PROMPT_BYTE * self._frontend.max_prompt_bytes)

    def app(self) -> web.Application:
        middlewares: list[Middleware] = [_openai_errors]
        if self._api_key is not None:
            middlewares.append(_api_key_check(self._api_key))
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=middlewares)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model_id:.+}", self._model_card)
        if self._metrics is not None:
            app.router.add_get("/metrics", self._metrics_page)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        return app

    async def start(self, host: str, port: int) -> str:
        # handler_cancellation: a client that disconnects cancels its handler even while it awaits a token.
        runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            await runner.cleanup()
            raise OSError(f"could not bind the HTTP API to {host}:{port}: {error.strerror}") from error
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.address = f"{bound_host}:{bound_port}"
        return self.address

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ endpoints

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _metrics_page(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        body, content_type = self._metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    def _card(self) -> dict[str, object]:
        return {
            "id": self._model.name,
            "object": "model",
            "created": self._started,
            "owned_by": "pdsim",
            "root": self._model.name,  # vLLM's field; its checkpoint's path stays on the server
            "max_model_len": self._model.max_context,
            # pdsim's: an emulated cluster's dilation, so a client reports in its time (`loadgen.clock`)
            **({"pdsim_time_dilation": self._model.time_dilation} if self._model.time_dilation > 1 else {}),
        }

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [self._card()]})

    async def _model_card(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]
        if model_id != self._model.name:
            raise model_not_found(model_id)
        return web.json_response(self._card())

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        body = await self._body(request)
        try:
            parsed = parse_completion(body, self._frontend.default_max_tokens)
        except InvalidRequest as error:
            self._frontend.rejected()
            raise http_error(error, _fields(body)) from error
        return await self._serve(request, parsed.prompt, parsed.options, received, TextShape, {})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        body = await self._body(request)
        rename = {"prompt": "messages"}
        try:
            parsed = parse_chat(body, self._frontend.default_max_tokens)
            if self._chat_template is None:
                raise InvalidRequest(f"messages: the model {self._model.name} has no chat template")
            # Jinja is pure Python: on a tokenizer thread it yields the event loop the GIL every few milliseconds.
            text = await self._frontend.off_loop(self._chat_template.render, parsed.messages)
        except InvalidRequest as error:
            self._frontend.rejected()
            raise http_error(error, _fields(body), rename) from error
        return await self._serve(request, text, parsed.options, received, ChatShape, rename, special_tokens=False)

    # ------------------------------------------------------------------ shared

    async def _body(self, request: web.Request) -> object:
        try:
            return await request.json()
        # ValueError covers bad JSON and undecodable bytes; LookupError an unknown charset; RecursionError nesting.
        except (ValueError, LookupError, RecursionError) as error:
            self._frontend.rejected()
            raise HttpError(400, f"the request body is not valid JSON: {error}") from error
        except web.HTTPRequestEntityTooLarge as error:
            self._frontend.rejected()
            message = (
                f"the request body is over the limit of {self.max_body_bytes} bytes (a prompt holds at most "
                f"{self._frontend.max_prompt_bytes} bytes of text: no longer one fits the model's context)"
            )
            raise HttpError(413, message, code="request_too_large") from error

    async def _serve(
        self,
        request: web.Request,
        prompt: str | list[int],
        options: Options,
        received: float,
        shape_type: type[Shape],
        rename: dict[str, str],
        special_tokens: bool = True,
    ) -> web.StreamResponse:
        if options.model is not None and options.model != self._model.name:
            self._frontend.rejected(options.request_class)
            raise model_not_found(options.model)
        try:
            admitted = await self._frontend.admit(
                prompt,
                options.params,
                received,
                options.request_class,
                stop=options.stop,
                include_stop=options.include_stop_str_in_output,
                special_tokens=special_tokens,
            )
        except InvalidRequest as error:
            raise http_error(error, REQUEST_FIELDS, rename) from error
        shape = shape_type(admitted.routed.request_id, self._model.name, options.stream and options.include_usage)
        async with contextlib.aclosing(self._frontend.stream(admitted)) as pieces:
            try:
                if not options.stream:
                    return await whole_response(admitted, pieces, shape, options.timeline, self._token_text)
                first = await anext(pieces)  # a refusal before any token still gets its own HTTP status
            except PdsimError as error:
                raise http_error(error, REQUEST_FIELDS, rename) from error
            return await event_stream(request, admitted, first, pieces, shape, options, self._token_text)

    def _token_text(self, token_id: int) -> str:
        return self._frontend.tokenizer.token_text(token_id)
