"""Reading a plain or gzip text file line by line, refusing binary and oversized input."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from app.prompt_files.base import PromptFileError
from app.safe_parse import BoundedReader, ParseLimitError

_GZIP_MAGIC = b"\x1f\x8b"
# A bound on one line keeps a binary file without newlines (or a hostile upload) from being
# read whole into memory; real prompt lines, even long HH-RLHF transcripts, are far smaller.
_MAX_LINE_BYTES = 8 * 1024 * 1024


def _open_binary(path: Path, max_bytes: int | None) -> io.BufferedIOBase | BoundedReader:
    # Sniff the magic bytes rather than trust the extension: browsers and users rename files,
    # and a ".jsonl" that is really gzip should still work (and vice versa).
    with path.open("rb") as probe:
        magic = probe.read(2)
    # The caller closes the stream (read_text_lines' `with`).
    opener = gzip.open if magic == _GZIP_MAGIC else open
    stream: io.BufferedIOBase = opener(path, "rb")
    return stream if max_bytes is None else BoundedReader(stream, max_bytes)


def read_text_lines(path: Path, *, max_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` from a plain or gzip text file, without the line ending.

    Refuses binary: a NUL byte, bytes that are not UTF-8 or a line over 8 MiB raise a
    `PromptFileError` naming the line. A UTF-8 byte-order mark at the start is dropped. The file
    is streamed line by line; with `max_bytes`, reading stops with a `PromptFileError` as soon
    as the (decompressed) text exceeds it.
    """
    with _open_binary(path, max_bytes) as stream:
        number = 0
        while True:
            try:
                raw = stream.readline(_MAX_LINE_BYTES)
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                # EOFError is how gzip reports a truncated file; zlib.error a damaged stream.
                raise PromptFileError(f"not a valid gzip file: {err}") from err
            except ParseLimitError as err:
                raise PromptFileError(err.problem, number + 1) from None
            if not raw:
                return
            number += 1
            if len(raw) >= _MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise PromptFileError(
                    f"line longer than {_MAX_LINE_BYTES // (1024 * 1024)} MiB "
                    "(is this a text file?)",
                    number,
                )
            # UTF-8 decodes NUL happily, yet no text format has one: it marks binary or UTF-16.
            if b"\x00" in raw:
                raise PromptFileError("not text (binary or not UTF-8)", number)
            try:
                # Decoding per line is safe: b"\n" never occurs inside a UTF-8 multibyte sequence.
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise PromptFileError("not text (binary or not UTF-8)", number) from err
            if number == 1:
                text = text.removeprefix("\ufeff")
            text = text.removesuffix("\n").removesuffix("\r")
            yield number, text
