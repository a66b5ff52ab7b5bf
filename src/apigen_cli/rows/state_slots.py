"""A small record rewritten after every request, cheaply, and never left half-written: two slots written in turn.

A run's state (``checkpoint.RunState``) is saved at every finished request. Written to a
new file and renamed over the old, each save waited on the disk (ext4 starts writing a file
renamed over another at once) and cost a run a third of its main thread. Here the file is
written in place instead, and a kill at any instant still leaves a whole record:

- a header block, written once when the file is made: ``MAGIC`` and the slots' size;
- two slots, each in blocks of its own: a sequence number, the payload's length, a
  checksum (blake2b) of the three, then the payload. Save ``n`` goes to slot ``n % 2``
  with one ``os.pwrite``, so the other slot holds save ``n - 1`` untouched;
- the reader takes the valid slot of the higher sequence number: a torn write (a kill in
  the middle of a ``pwrite``) fails its checksum and the other slot, one save older, is read.

A payload that outgrows its slot, a file of the older format (plain JSON) and a fresh start
make a new file, written beside it and renamed over it, as every save did before.
"""

from __future__ import annotations

import hashlib
import os
import struct

from .side_files import create_exclusive, open_regular

MAGIC = b"\x00apigen run state: two slots\n"
BLOCK = 4096  # the header and each slot start on a block of their own: a slot's write never touches the other's
_SLOT_HEAD = struct.Struct("<QI16s")  # sequence number, payload length, checksum
_HEADER = struct.Struct(f"<{len(MAGIC)}sI")  # MAGIC, slot size
_MOST_SLOT_BYTES = 1 << 28  # a header naming bigger slots is damage, not a state


class UnreadableState(ValueError):
    """The file is of the two-slot format, but neither slot holds a whole record."""


def is_slotted(raw: bytes) -> bool:
    """``raw`` is a file of this format (anything else is a state of the older format, plain JSON, or damage)."""
    return raw.startswith(MAGIC)


def newest_payload(raw: bytes) -> bytes:
    """The payload of the newest whole slot of a file's bytes (``is_slotted``); ``UnreadableState`` when none is."""
    return _newest(raw)[2]


class SlottedFile:
    """The file open for saves in place; ``save`` writes the next slot, or makes the file anew when it must."""

    def __init__(self, path: str, temporary: str) -> None:
        self.path = path
        self.temporary = temporary  # the name a new file is written under before it is renamed over ``path``
        self._descriptor: int | None = None
        self._slot_size = 0
        self._sequence = 0  # of the newest whole slot in the file

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def save(self, payload: bytes, *, sync: bool, anew: bool = False) -> None:
        """Write ``payload`` as the newest record; ``sync`` forces it to disk (``fsync``) before returning.

        ``anew``: make a new file whatever is there (a fresh run leaves nothing of an earlier one).
        ``OSError`` (``NotRegularFile`` for a link, FIFO or folder at the name) for the caller to name.
        """
        if not anew and self._descriptor is None:
            self._open_existing()
        if anew or self._descriptor is None or _SLOT_HEAD.size + len(payload) > self._slot_size:
            self._make_anew(payload, sync)
            return
        sequence = self._sequence + 1
        os.pwrite(self._descriptor, _slot(sequence, payload), BLOCK + (sequence % 2) * self._slot_size)
        if sync:
            os.fsync(self._descriptor)
        self._sequence = sequence

    def _open_existing(self) -> None:
        """Open the file at ``path`` to write in place, when it is of this format and holds a whole slot."""
        try:
            descriptor = open_regular(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            raw = os.pread(descriptor, os.fstat(descriptor).st_size, 0)
            self._slot_size, self._sequence, _ = _newest(raw)
        except (OSError, UnreadableState):
            os.close(descriptor)  # an older format or damage: the save makes the file anew
            return
        self._descriptor = descriptor

    def _make_anew(self, payload: bytes, sync: bool) -> None:
        """A new file (slots sized for the payload to grow) written under ``temporary``, then renamed over ``path``."""
        self.close()
        slot_size = -(-2 * (_SLOT_HEAD.size + len(payload)) // BLOCK) * BLOCK  # room to double, in whole blocks
        sequence = 1
        head = _HEADER.pack(MAGIC, slot_size).ljust(BLOCK, b"\x00")
        first = bytes(slot_size)  # slot 0: empty, never valid
        second = _slot(sequence, payload).ljust(slot_size, b"\x00")
        descriptor = create_exclusive(self.temporary, 0o644)  # never through a link planted at the name
        try:
            with os.fdopen(descriptor, "wb", closefd=False) as handle:
                handle.write(head + first + second)
                if sync:
                    handle.flush()
                    os.fsync(descriptor)
            os.replace(self.temporary, self.path)
        except BaseException:
            os.close(descriptor)
            raise
        # the descriptor (write-only, which is all pwrite needs) is now the file at ``path``: later saves go there
        self._descriptor, self._slot_size, self._sequence = descriptor, slot_size, sequence


def _slot(sequence: int, payload: bytes) -> bytes:
    return _SLOT_HEAD.pack(sequence, len(payload), _checksum(sequence, payload)) + payload


def _checksum(sequence: int, payload: bytes) -> bytes:
    digest = hashlib.blake2b(struct.pack("<QI", sequence, len(payload)), digest_size=16)
    digest.update(payload)
    return digest.digest()


def _newest(raw: bytes) -> tuple[int, int, bytes]:
    """(slot size, sequence, payload) of the whole slot with the higher sequence number; ``UnreadableState`` otherwise."""
    if not is_slotted(raw) or len(raw) < _HEADER.size:
        raise UnreadableState("it is not a state file of the two-slot format")
    slot_size = _HEADER.unpack_from(raw)[1]
    if slot_size < BLOCK or slot_size % BLOCK or slot_size > _MOST_SLOT_BYTES:
        raise UnreadableState(f"its header names slots of {slot_size} bytes")
    best: tuple[int, int, bytes] | None = None
    for index in (0, 1):
        start = BLOCK + index * slot_size
        if len(raw) < start + _SLOT_HEAD.size:
            continue
        sequence, length, checksum = _SLOT_HEAD.unpack_from(raw, start)
        if sequence % 2 != index or length > slot_size - _SLOT_HEAD.size:
            continue
        payload = raw[start + _SLOT_HEAD.size : start + _SLOT_HEAD.size + length]
        if len(payload) == length and _checksum(sequence, payload) == checksum and (best is None or sequence > best[1]):
            best = (slot_size, sequence, payload)
    if best is None:
        raise UnreadableState("neither of its two slots holds a whole state (the file is damaged or cut)")
    return best
