"""Reading an HTTP reply's body with a cap on its decoded size, for the LLM client, REST calls and MCP over HTTP.

A server decides how big a reply is, and ``Content-Encoding: gzip`` lets 1 MB on
the wire become 1 GiB in memory. So bodies are read chunk by chunk from the raw
stream and inflated here, never more than ``limit`` bytes at a time, and reading
stops as soon as the decoded size passes the cap (``ReplyTooLarge``). Only the
encodings apigen asks for (``Accept-Encoding: gzip, deflate``) are understood; any
other is refused rather than kept undecoded.
"""

from __future__ import annotations

import zlib

#: What apigen says it accepts; a server sending anything else is refused.
ACCEPT_ENCODING = "gzip, deflate"
#: The reason code of a row whose reply was over the cap.
TOO_LARGE = "reply_too_large"


class ReplyTooLarge(Exception):
    """The decoded body passed the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the reply is larger than the cap of {limit:,} bytes (decoded)")
        self.limit = limit


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` apigen did not ask for."""


class _Inflater:
    """One layer of gzip or deflate, inflated in bounded steps."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._zlib_header = name == "deflate"
        wbits = zlib.MAX_WBITS | 16 if name == "gzip" else zlib.MAX_WBITS
        self._decoder = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate ``data``; raise ``ReplyTooLarge`` once more than ``room`` bytes come out."""
        if not self._started and data:
            self._started = True
            if self._zlib_header and (data[0] & 0x0F) != 8:  # raw deflate, as some servers send it
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        out = bytearray()
        while data and not self._decoder.eof:
            try:
                chunk = self._decoder.decompress(data, room - len(out) + 1)
            except zlib.error as error:
                raise UnsupportedEncoding(f"the {self.name} body is damaged ({error})") from None
            out += chunk
            if len(out) > room:
                raise ReplyTooLarge(room)
            data = self._decoder.unconsumed_tail
            if not chunk and data:
                break
        return bytes(out)


class BoundedBody:
    """Collects a body from raw chunks: ``feed`` each, then ``content``; ``limit`` caps the decoded bytes.

    ``decode`` gives each chunk's decoded bytes without keeping them, for a body read as a
    stream (the MCP client's), under the same cap over the whole reply.
    """

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        self.limit = limit
        names = [name.strip().lower() for name in (content_encoding or "").split(",") if name.strip()]
        layers = []
        for name in names:
            if name in ("identity", ""):
                continue
            if name in ("x-gzip",):
                name = "gzip"
            if name not in ("gzip", "deflate"):
                raise UnsupportedEncoding(f"the reply is encoded as `{name}`, which apigen did not ask for")
            layers.append(_Inflater(name))
        self._layers = list(reversed(layers))  # the last encoding applied is undone first
        self._parts: list[bytes] = []
        self.size = 0

    def decode(self, raw: bytes) -> bytes:
        """``raw`` decoded; raises ``ReplyTooLarge`` once the reply so far decodes past the cap."""
        data = raw
        for number, layer in enumerate(self._layers, 1):
            if not data:
                return b""
            data = layer.feed(data, self.limit - self.size if number == len(self._layers) else self.limit)
        self.size += len(data)
        if self.size > self.limit:
            raise ReplyTooLarge(self.limit)
        return data

    def feed(self, raw: bytes) -> None:
        data = self.decode(raw)
        if data:
            self._parts.append(data)

    def content(self) -> bytes:
        return b"".join(self._parts)


def declared_too_large(content_length: str | None, content_encoding: str | None, limit: int) -> bool:
    """Whether an unencoded reply says up front that it is over the cap (it need not be read at all)."""
    if content_encoding and content_encoding.strip().lower() not in ("identity", ""):
        return False
    try:
        return content_length is not None and int(content_length) > limit
    except ValueError:
        return False
