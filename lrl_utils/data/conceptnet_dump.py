"""The ConceptNet dump: fetched once (`fetch_dump`), then read in one streaming pass: decompression in a second thread, block reads by one regular expression, line-by-line re-reads, per-language statistics (the module docstring of `conceptnet.py` explains the fast path)."""

from __future__ import annotations

import logging
import os
import queue
import re
import sys
import threading
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np

from lrl_utils.data.conceptnet_templates import (
    _LANGUAGE_RELATION,
    _MALFORMED,
    _PREDICATES,
    DROP_REASONS,
    _verbalise,
)
from lrl_utils.data.sources import BadRecords, DataSourceError, Location, _existing, _is_hub

BLOCK_BYTES = 1 << 20  # decompressed bytes read at a time
SWITCH_INTERVAL = 1e-4  # seconds; see _blocks


def _inflated(f: IO[bytes], chunk: int) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file (one or more members), at most BLOCK_BYTES at a time."""
    inflate, pending = zlib.decompressobj(wbits=31), False
    while raw := f.read(chunk):
        while raw:
            if not pending and not (raw := raw.lstrip(b"\0")):  # zero padding after a member
                break
            data, pending = inflate.decompress(raw, BLOCK_BYTES), True
            raw = inflate.unconsumed_tail
            if inflate.eof:  # the next member, if any, starts in unused_data
                raw, inflate, pending = inflate.unused_data, zlib.decompressobj(wbits=31), False
            yield data
    if pending and (tail := inflate.flush()):  # output held back by the last call's max_length
        yield tail
    if pending and not inflate.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


log = logging.getLogger(__name__)

DUMP_URL = "https://s3.amazonaws.com/conceptnet/downloads/2019/edges/conceptnet-assertions-5.7.0.csv.gz"


def fetch_dump(url: str = DUMP_URL, folder: Location | None = None) -> Path:
    """Download the dump at `url` once into `folder` (default `data/conceptnet/`); the cached file after that.

    The download goes to a temporary file renamed into place, so an interrupted one leaves nothing behind.
    Without network access this fails at once, saying how to use a local copy.
    """
    import shutil
    import tempfile
    import urllib.request

    from lrl_utils.config import paths

    target_dir = Path(folder) if folder is not None else paths.data_dir() / "conceptnet"
    target = target_dir / url.rstrip("/").rsplit("/", 1)[-1]
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target_dir)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            shutil.copyfileobj(response, out, length=1 << 20)
        os.replace(tmp, target)
    except OSError as exc:
        raise DataSourceError(
            f"cannot download {url} ({exc}); download it elsewhere and set `data.conceptnet` to the local file"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _read_blocks(path: Path, chunk: int = 1 << 19) -> Iterator[bytes]:
    """The dump (gzip or plain), decompressed, in blocks of up to about BLOCK_BYTES that end with a whole line."""
    carry = b""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        for data in _inflated(f, chunk) if gzipped else iter(partial(f.read, BLOCK_BYTES), b""):
            cut = data.rfind(b"\n") + 1
            if cut:
                yield carry + data[:cut]
                carry = data[cut:]
            else:
                carry += data
    if carry:
        yield carry + b"\n"


def _blocks(path: Path, queued: int = 4) -> Iterator[bytes]:
    """`_read_blocks` run ahead in a thread: zlib releases the GIL while it inflates, so decompression overlaps
    the parsing. The reading thread needs the GIL back several times per block, and by default would wait up
    to 5 ms each time for the parsing thread to yield it; a switch interval of 0.1 ms while the dump is read
    (restored afterwards) and blocks of 1 MiB make the two overlap (benchmarks/README.md)."""
    blocks: queue.Queue = queue.Queue(maxsize=queued)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                return blocks.put(item, timeout=0.1)
            except queue.Full:
                continue

    def read() -> None:
        try:
            for block in _read_blocks(path):
                put(block)
            put(None)
        except BaseException as exc:  # handed to the reading thread, which raises it
            put(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    reader = threading.Thread(target=read, name=f"read {path.name}", daemon=True)
    reader.start()
    try:
        while (item := blocks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)


def _four_tabs_a_line(block: bytes) -> bool:
    """True if every line of `block` (which ends with a line end) holds exactly 4 tabs.

    With 4 tabs a line in all, that holds if and only if the 4k-th tab (1-based) lies before the k-th line
    end and the next tab after it. A total alone would let a line with too few tabs and one with too many
    offset each other; this stays a few vectorised passes over the block (as fast as two `bytes.count`s).
    """
    data = np.frombuffer(block, np.uint8)
    ends, tabs = np.flatnonzero(data == 10), np.flatnonzero(data == 9)
    if tabs.size != 4 * ends.size:
        return False
    return bool((tabs[3::4] < ends).all() and (tabs[4::4] > ends[:-1]).all())


def _new_language_stats() -> dict[str, Any]:
    return {"edges_in_language": 0, "kept": 0, "per_relation": {}, "dropped": dict.fromkeys(DROP_REASONS, 0)}


class _Scan:
    """One pass over a dump for a set of languages: yields {language: sentences} per block, counts outcomes."""

    def __init__(
        self,
        dump_path: Location,
        languages: Sequence[str],
        paper_compat: bool,
        max_bad_fraction: float,
        line_by_line: bool,
    ):
        if _is_hub(dump_path):
            raise DataSourceError(
                "ConceptNet is not on the Hugging Face hub: set `data.conceptnet` to a local "
                f"conceptnet-assertions-5.7.0.csv.gz or to its URL {DUMP_URL}"
            )
        if str(dump_path).startswith(("http://", "https://")):
            dump_path = fetch_dump(str(dump_path))
        self.path = _existing(dump_path, "ConceptNet assertions dump")
        for code in languages:
            if not re.fullmatch(r"[^/\s]+", code):
                raise ValueError(f"conceptnet: language code {code!r} is not a ConceptNet code like `mt`")
        self.codes = {code.encode(): code for code in languages}
        alternatives = b"|".join(re.escape(c) for c in sorted(self.codes, key=len, reverse=True))
        # relation, language, start word, rest of the start, `/c/<lang>/` of the end, end word, rest, end of field
        self.pattern = re.compile(
            rb"\t/r/([^\t\n]*)\t/c/(" + alternatives + rb")/([^\t\n/]*)([^\t\n]*)"
            rb"\t(/c/[^\t\n/]*/)?([^\t\n/]*)([^\t\n]*)([\t\n])"
        )
        self.paper_compat, self.line_by_line = paper_compat, line_by_line
        self.bad = BadRecords(self.path, max_bad_fraction)
        self.outcomes: Counter[tuple[bytes, bytes]] = Counter()  # (language, relation or drop reason)
        self.lines = self.blank = self.slow_blocks = 0

    def __iter__(self) -> Iterator[dict[bytes, bytes]]:
        blocks = _blocks(self.path)
        while True:
            try:
                block = next(blocks, None)
            except (EOFError, OSError, zlib.error) as exc:
                raise DataSourceError(f"{self.path}:{self.lines + 1}: cannot read the dump ({exc})") from exc
            if block is None:
                return
            n = block.count(b"\n")
            texts = None if self.line_by_line else self._fast(block)
            if texts is None:
                texts = self._slow(block)
                self.slow_blocks += 1
            self.lines += n
            yield texts

    def _fast(self, block: bytes) -> dict[bytes, bytes] | None:
        """The block's sentences by language, or None when it must be read line by line."""
        if not _four_tabs_a_line(block):
            return None
        found = self.pattern.findall(block)
        outcomes = Counter(map(_LANGUAGE_RELATION, found))  # kept edges; drops are moved below
        sentences: defaultdict[bytes, list[bytes]] = defaultdict(list)
        predicates, paper_compat = _PREDICATES, self.paper_compat
        for relation, lang, start, tail, c, end, end_tail, after in found:
            predicate = predicates.get(relation)
            if paper_compat:  # the last segments
                subject = tail.rpartition(b"/")[2] if tail else start
                obj = end_tail.rpartition(b"/")[2] if end_tail else end
            else:
                subject, obj = start, end
            if predicate is None or not c or not subject or not obj or after == b"\n":
                if after == b"\n":  # a line of 4 columns
                    return None
                outcome, sentence = _verbalise(relation, start + tail, c + end + end_tail, paper_compat)
                if outcome is _MALFORMED:
                    return None
            else:
                subject, obj = subject.replace(b"_", b" "), obj.replace(b"_", b" ")
                if subject != obj:
                    sentences[lang].append(b"%s %s %s." % (subject, predicate, obj))
                    continue
                outcome, sentence = b"same_surface", None
            outcomes[lang, relation] -= 1
            outcomes[lang, outcome] += 1
            if sentence is not None:
                sentences[lang].append(sentence)
        texts = {lang: b"\n".join(items) + b"\n" for lang, items in sentences.items()}
        try:
            for text in texts.values():
                text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        self.outcomes.update(outcomes)
        return texts

    def _slow(self, block: bytes) -> dict[bytes, bytes]:
        """The reference reading: every line on its own, malformed ones reported with their line number."""
        sentences: defaultdict[bytes, list[bytes]] = defaultdict(list)
        for number, line in enumerate(block.split(b"\n")[:-1], self.lines + 1):
            if not line.strip():
                self.blank += 1
                continue
            columns = line.split(b"\t")
            lang, rest = None, b""
            if len(columns) >= 3 and columns[1][:3] == b"/r/":
                parts = columns[2].split(b"/", 3)
                if len(parts) == 4 and not parts[0] and parts[1] == b"c" and parts[2] in self.codes:
                    lang, rest = parts[2], parts[3]
            if len(columns) != 5:
                self._malformed(lang, number, "not 5 tab-separated columns", f"{len(columns)} columns")
                continue
            if lang is None:
                continue
            outcome, sentence = _verbalise(columns[1], rest, columns[3], self.paper_compat)
            if outcome is _MALFORMED:
                end = columns[3].decode("utf-8", "replace")
                self._malformed(lang, number, "no word in the start or end URI", end)
                continue
            if sentence is not None:
                try:
                    sentence.decode("utf-8")
                except UnicodeDecodeError:
                    self._malformed(lang, number, "invalid UTF-8 in a URI")
                    continue
                sentences[lang].append(sentence)
            self.outcomes[lang, outcome] += 1
        return {lang: b"\n".join(items) + b"\n" for lang, items in sentences.items()}

    def _malformed(self, lang: bytes | None, number: int, reason: str, detail: str = "") -> None:
        self.bad.add(f"{self.path}:{number}", reason, detail)
        if lang is not None:
            self.outcomes[lang, _MALFORMED] += 1

    def finish(self, dump_stats: dict | None = None) -> dict[str, Any]:
        """Dump-wide statistics; raises when more than max_bad_fraction of the lines are malformed."""
        read = self.lines - self.blank
        stats = {"lines": self.lines, "blank_lines": self.blank, **self.bad.stats(read)}
        stats["blocks_read_line_by_line"] = self.slow_blocks
        if dump_stats is not None:
            dump_stats.update(stats)
        if self.bad.count:
            log.warning("%s: %d of %d lines malformed", self.path, self.bad.count, read)
        self.bad.check(read, "lines")
        return stats

    def language_stats(self) -> dict[str, dict]:
        """Per language: edges_in_language == kept + sum(dropped); kept == sum(per_relation)."""
        stats = {code: _new_language_stats() for code in self.codes.values()}
        for (lang, outcome), n in sorted(self.outcomes.items()):
            if not n:  # a relation whose edges were all dropped
                continue
            st, name = stats[self.codes[lang]], outcome.decode()
            st["edges_in_language"] += n
            if name in st["dropped"]:
                st["dropped"][name] += n
            else:
                st["kept"] += n
                st["per_relation"][name] = n
        return stats
