"""Archive fixtures the tests share."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def make_rar(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A RAR 2.9 archive written by hand (no free tool creates RAR): members are
    (name, data, method), method 0x30 = stored, 0x33 = compressed (data then garbage)."""

    def block(kind: int, flags: int, body: bytes) -> bytes:
        raw = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(raw) & 0xFFFF) + raw

    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, bytes(6))
    date = ((2020 - 1980) << 25) | (1 << 21) | (1 << 16)
    for name, data, method in members:
        raw_name = name.encode()
        header = (
            struct.pack(
                "<LLBLLBBHL", len(data), len(data), 3, zlib.crc32(data), date, 29, method, len(raw_name), 0o100644
            )
            + raw_name
        )
        out += block(0x74, 0x8000, header) + data
    path.write_bytes(out + block(0x7B, 0x4000, b""))
    return path
