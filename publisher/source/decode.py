"""Bytes of a saved page -> text with LF line endings.

Saved pages come as UTF-8 (with or without BOM), UTF-16 with BOM or
Windows-1252, with LF, CRLF or CR line endings; a binary file or one that
decodes as none of them is a problem at its line, never a traceback.
"""

from __future__ import annotations

from publisher.errors import Problem, error, warning

#: C0 controls XML 1.0 forbids, as bytes (a byte-level scan finds them fast).
XML_FORBIDDEN_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32)])


def decode(data: bytes, name: str) -> tuple[str | None, list[Problem]]:
    """Bytes -> text with LF line endings; UTF-8 (BOM or not), UTF-16 with BOM, or Windows-1252."""
    if not data.strip():
        return None, [error(name, 1, "empty file: no posts to read; remove it or re-save the page")]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None, [error(name, 1, "undecodable UTF-16 file; re-save it as UTF-8")]
    elif _looks_binary(data[:8192]):
        return None, [error(name, 1, "binary file (NUL bytes), not an archive page; remove it")]
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return _not_utf8(data, name, exc)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, []


def _not_utf8(data: bytes, name: str, exc: UnicodeDecodeError) -> tuple[str | None, list[Problem]]:
    """A file that is not UTF-8 throughout: Windows-1252 when it holds no UTF-8 at
    all (a page saved by an older Windows tool); UTF-8 with stray Windows-1252
    bytes (text pasted from another program) when it does, each stray byte read as
    Windows-1252 with a warning at its line."""
    mixed = data.decode("utf-8-sig", errors="surrogateescape")
    if any(ord(c) > 0x7F and not 0xDC80 <= ord(c) <= 0xDCFF for c in mixed):
        problems = []
        out = []
        line = 1
        warned: set[int] = set()
        for c in mixed:
            if c == "\n":
                line += 1
            if 0xDC80 <= ord(c) <= 0xDCFF:
                byte = bytes([ord(c) - 0xDC00])
                c = byte.decode("cp1252", errors="replace")
                if line not in warned:
                    warned.add(line)
                    problems.append(
                        warning(
                            name,
                            line,
                            f"byte 0x{byte[0]:02x} is not UTF-8: read as Windows-1252 "
                            f"({c!r}); re-save the page as UTF-8",
                        )
                    )
            out.append(c)
        text = "".join(out)
    else:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            line = data[: exc.start].count(b"\n") + 1
            return None, [
                error(
                    name,
                    line,
                    f"undecodable file: byte 0x{data[exc.start]:02x} is neither UTF-8 nor "
                    "Windows-1252; re-save the page as UTF-8",
                )
            ]
        problems = []
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, problems


def _looks_binary(head: bytes) -> bool:
    """NUL bytes amid many control bytes: an image or other binary, not a saved page.

    A stray NUL in otherwise ordinary text is not enough; it is stripped later
    with a warning like any other control character.
    """
    if b"\x00" not in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls > len(head) * 0.05
