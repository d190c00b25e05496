"""Bounded input for the coordinator's HTTP server: connections, file descriptors, bodies.

A coordinator must keep serving its trials whatever reaches its port: a flood of connections
that never send a request, a body that trickles in, a body of a gigabyte, JSON nested a
million levels deep or holding text no database can store. Each is refused here with a
message, before any handler or the store sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("ridgeline")

MAX_CONNECTIONS = 1024  # open HTTP connections at once (trials hold one or two each)
FD_RESERVE = 256  # descriptors kept for trial processes, the store and logs
FD_LIMIT_CAP = 65536  # the soft descriptor limit is raised to the hard one, up to this
HEADER_TIMEOUT = 15.0  # seconds a connection may take to send a request's headers (or idle)
BODY_TIMEOUT = 30.0  # seconds a request body may take to arrive
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32  # nesting of JSON objects and arrays in a request body


class Refused(Exception):
    """A request the server answers with ``status`` and ``message`` (never a 500)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def raise_fd_limit(cap: int = FD_LIMIT_CAP) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (at most ``cap``); returns the soft limit.

    The default soft limit (often 1024) is far below what a coordinator with many trials and
    their connections needs; running out means trial processes cannot even be started."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    return soft


def connection_cap(fd_limit: int) -> int:
    """How many HTTP connections to hold open with ``fd_limit`` descriptors."""
    return max(16, min(MAX_CONNECTIONS, fd_limit - FD_RESERVE))


class ConnectionLimit:
    """Keeps at most ``limit`` connections open. A new connection over the limit closes the
    oldest one that is not in a request (never sent one, or idles between requests), so a
    flood of silent connections cannot lock trials out: a trial's client reconnects when its
    idle connection was closed. Only when every connection is mid-request is the newcomer
    closed instead."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[RequestHandler, None] = {}  # insertion order: oldest first
        self._busy: set[RequestHandler] = set()
        self.closed = 0  # connections closed for being over the limit

    def attach(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._open[handler] = None
            if len(self._open) > self.limit:
                self._close_one(handler)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._open.pop(handler, None)
            self._busy.discard(handler)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _close_one(self, newcomer: RequestHandler) -> None:
        victim = next(
            (h for h in self._open if h is not newcomer and h not in self._busy), newcomer
        )
        self._open.pop(victim, None)
        self.closed += 1
        if self.closed in (1, 100) or self.closed % 10000 == 0:
            log.warning(
                "over %d open HTTP connections: closed %d idle ones so far",
                self.limit,
                self.closed,
            )
        victim.force_close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Marks the connection as in a request while the handler runs."""
        protocol = request.protocol
        if protocol is None:
            return await handler(request)
        self._busy.add(protocol)
        try:
            return await handler(request)
        finally:
            self._busy.discard(protocol)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty), checked by ``check_json``."""
    try:
        if request.content.is_eof():  # the whole body came with the headers: no wait
            raw = await request.read()
        else:
            async with asyncio.timeout(BODY_TIMEOUT):
                raw = await request.read()
    except TimeoutError:
        raise Refused(f"request body not received within {BODY_TIMEOUT:.0f} s", 408) from None
    except web.HTTPRequestEntityTooLarge:
        raise Refused(
            f"request body larger than {MAX_BODY_BYTES} bytes; send fewer reports per request",
            413,
        ) from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        raise Refused(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # also bad UTF-8 and integers of over 4,300 digits
        raise Refused(f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Refused(f"the request body must be a JSON object, got {type(body).__name__}")
    check_json(body)
    return body


def check_json(value: Any, where: str = "body") -> None:
    """Refuse what no store or reader can keep: nesting deeper than ``MAX_DEPTH``, strings
    with lone surrogates (not encodable as UTF-8), integers too large for a float. Iterative,
    so a deep value cannot exhaust the stack. Clean bodies (nearly all) take one quick pass;
    only a refused one is walked again to name where the fault is."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and not _encodable(item):
                break
        elif isinstance(item, dict):
            if depth >= MAX_DEPTH:
                break
            for key, child in item.items():
                if not key.isascii() and not _encodable(key):
                    _explain(value, where)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 1000:
            if not _fits_float(item):
                break
    else:
        return
    _explain(value, where)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fits_float(number: int) -> bool:
    try:
        float(number)
    except OverflowError:
        return False
    return True


def _explain(value: Any, where: str) -> None:
    """Raise the refusal for ``value``'s first fault, with the path to it."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, where, path)
        elif isinstance(item, dict):
            if len(path) >= MAX_DEPTH:
                raise Refused(f"{_where(where, path)}: nested deeper than {MAX_DEPTH} levels")
            for key, child in item.items():
                _check_text(key, where, path)
                stack.append((child, (*path, key)))
        elif isinstance(item, list):
            if len(path) >= MAX_DEPTH:
                raise Refused(f"{_where(where, path)}: nested deeper than {MAX_DEPTH} levels")
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and not _fits_float(item):
            raise Refused(
                f"{_where(where, path)}: integer too large for a float ({item.bit_length()} bits)"
            )


def _check_text(text: str, where: str, path: tuple[Any, ...]) -> None:
    if not text.isascii() and not _encodable(text):
        raise Refused(
            f"{_where(where, path)}: text {ascii(text[:40])} holds a lone surrogate, which is "
            f"not valid Unicode; send UTF-8 text"
        )


def _where(where: str, path: tuple[Any, ...]) -> str:
    parts = [where]
    for key in path:
        parts.append(f"[{key}]" if isinstance(key, int) else f".{ascii(key)[1:-1]}")
    return "".join(parts)


__all__ = [
    "ConnectionLimit",
    "Refused",
    "check_json",
    "connection_cap",
    "raise_fd_limit",
    "read_json",
]
