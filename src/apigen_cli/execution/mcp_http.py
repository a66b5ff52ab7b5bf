"""The HTTP client of MCP sessions over streamable HTTP: every reply's decoded size capped.

The SDK reads a reply whole (``aread``) and lets ``Content-Encoding: gzip`` inflate it
as it comes: a few megabytes on the wire became gigabytes in memory. So the SDK is
handed a client whose transport decodes each reply itself, chunk by chunk, with the
cap the LLM client and REST calls use (``replies.BoundedBody``); past it the reply
fails with ``ReplyTooLarge``, which ends that call (or the session's opening) with a
message naming the cap. ``httpx2`` is the SDK's own HTTP library, installed with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

from ..replies import ACCEPT_ENCODING, BoundedBody, ReplyTooLarge, UnsupportedEncoding, declared_too_large

_BODY_HEADERS = frozenset({"content-encoding", "content-length"})


class _BoundedStream(httpx2.AsyncByteStream):
    """A reply's raw body, decoded here under the cap."""

    def __init__(self, raw: httpx2.AsyncByteStream, body: BoundedBody, transport: BoundedReplies) -> None:
        self._raw = raw
        self._body = body
        self._transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._raw:
            try:
                decoded = self._body.decode(chunk)
            except (ReplyTooLarge, UnsupportedEncoding) as error:
                self._transport.refused = error
                raise
            if decoded:
                yield decoded

    async def aclose(self) -> None:
        await self._raw.aclose()


class BoundedReplies(httpx2.AsyncBaseTransport):
    """Wraps a transport: each reply comes back already decoded, and stops at ``limit`` decoded bytes.

    The SDK ends the session on any error reading a reply and says only "Connection closed",
    so the refusal is kept in ``refused`` for the caller to name.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self.limit = limit
        self.refused: ReplyTooLarge | UnsupportedEncoding | None = None

    def take_refusal(self) -> ReplyTooLarge | UnsupportedEncoding | None:
        """The reply refused since last asked, if one was."""
        refused, self.refused = self.refused, None
        return refused

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        response = await self._inner.handle_async_request(request)
        encoding = response.headers.get("Content-Encoding")
        try:
            if declared_too_large(response.headers.get("Content-Length"), encoding, self.limit):
                raise ReplyTooLarge(self.limit)
            body = BoundedBody(encoding, self.limit)
        except (ReplyTooLarge, UnsupportedEncoding) as error:
            self.refused = error
            await response.aclose()
            raise
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _BODY_HEADERS]
        return httpx2.Response(
            response.status_code,
            headers=headers,
            stream=_BoundedStream(response.stream, body, self),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded_client(transport: BoundedReplies) -> httpx2.AsyncClient:
    """A client as the SDK makes one (its timeouts, for long-lived streams), its replies through ``transport``.

    The caller closes it (``async with``): a client handed to the SDK is not closed by it.
    """
    timeout = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    return httpx2.AsyncClient(timeout=timeout, transport=transport)


def bounded_transport(limit: int) -> BoundedReplies:
    return BoundedReplies(httpx2.AsyncHTTPTransport(), limit)
