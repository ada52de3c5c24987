"""ConceptNet 5.7 assertions as English-template sentences (SPEC §2), streamed in one pass for many languages.

Input: `conceptnet-assertions-5.7.0.csv.gz` (or the plain `.csv`), one edge per line in five tab-separated
columns: edge URI, `/r/<Relation>`, start URI, end URI, JSON metadata. An edge belongs to the language of its
START node (`/c/<lang>/...`, the original's rule) and becomes `"{start} {predicate} {end}."` with the paper's
33 predicates. Dropped, and counted per language: ends that are URLs (ExternalURL), other relations, edges
whose two surface forms are equal, and malformed lines. Malformed lines (not 5 columns; in a requested
language also an end URI without a word or invalid UTF-8 in the sentence) are counted, the first ones are
reported as `file:line`, and a run fails only when more than `max_bad_fraction` of the non-blank lines are
malformed (`data_sources.BadRecords`).

How it is fast (benchmarks/README.md): the dump is decompressed in a second thread, in blocks of 1 MiB. A
block in which every line has exactly 4 tabs (checked per line, vectorised: `_four_tabs_a_line`) is read by
one regular expression that matches only the lines whose relation column starts with `/r/` and whose start
column starts with `/c/<a requested language>/`; any other block, and any block in which such a line is odd
in any way, is re-read line by line. `line_by_line=True` reads every block so; both give the same sentences
and statistics, malformed lines included, whatever mix of column counts a block holds
(tests/test_conceptnet.py). A line of a requested language is thus always checked in full, a line of another
language for its column count. Memory is bounded by the block size, plus the output where it is kept in
memory (`conceptnet_sentences`; `convert_conceptnet` writes files as it goes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrl_utils.data.conceptnet_dump import _Scan
from lrl_utils.data.conceptnet_sentences import sentence_splits, split_language
from lrl_utils.data.sources import (
    DEFAULT_MAX_BAD_FRACTION,
    AtomicFileSet,
    DataSourceError,
    Location,
    split_sizes,
    write_splits,
)

log = logging.getLogger(__name__)


def conceptnet_sentences(
    dump_path: Location,
    languages: Sequence[str],
    paper_compat: bool = False,
    *,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    dump_stats: dict | None = None,
    line_by_line: bool = False,
) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Verbalise a ConceptNet assertions dump for several languages in one pass, in memory.

    Returns (sentences by language in dump order, statistics by language: edges_in_language, kept,
    per_relation, dropped). `dump_stats`, if given, receives the dump-wide counts: lines, blank_lines,
    malformed, malformed_by_reason, bad_fraction, bad_examples (`file:line: reason`). Raises DataSourceError
    when more than `max_bad_fraction` of the non-blank lines are malformed.
    """
    scan = _Scan(dump_path, list(dict.fromkeys(languages)), paper_compat, max_bad_fraction, line_by_line)
    sentences: dict[str, list[str]] = {code: [] for code in scan.codes.values()}
    for texts in scan:
        for lang, text in texts.items():
            sentences[scan.codes[lang]] += text.decode("utf-8").split("\n")[:-1]
    scan.finish(dump_stats)
    return sentences, scan.language_stats()


def conceptnet_splits(
    dump_path: Location,
    code: str,
    out_dir: Location,
    *,
    seed: int = 42,
    paper_compat: bool = False,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    language: str | None = None,
) -> dict:
    """One language's sentences, split 80/10/10 as in the paper (`split_80_10_10`) and written to `out_dir`.

    Returns the language's statistics (`conceptnet_sentences`) plus `dump` (dump-wide counts), `splits`
    ({split: {"documents": sentences, "bytes": UTF-8 bytes}}) and the dump's malformed-line counts at the top
    level (as `glotcc.glotcc_splits` reports them). No sentence for the language → DataSourceError, no files.
    A folder instead of a dump holds sentences already verbalised (split by their files) or edge lists
    (`conceptnet_sentences.sentence_splits`; `language`, the registry key, may name the language's folder).
    """
    if Path(dump_path).is_dir():
        return sentence_splits(
            Path(dump_path), code, Path(out_dir), language, seed=seed, paper_compat=paper_compat
        )
    dump: dict = {}
    sentences, per_language = conceptnet_sentences(
        dump_path, [code], paper_compat, max_bad_fraction=max_bad_fraction, dump_stats=dump
    )
    stats = {**per_language[code], "dump": dump}
    if not sentences[code]:
        raise DataSourceError(
            f"{dump_path}: no ConceptNet sentence for language code {code!r}: "
            f"{stats['edges_in_language']} edges start in it, dropped: {stats['dropped']}"
        )
    splits = split_language(sentences[code], code, dump_path, seed)
    write_splits(out_dir, splits)
    bad = {k: dump[k] for k in ("malformed", "bad_fraction", "bad_examples")}
    return stats | {"splits": split_sizes(splits)} | bad


def convert_conceptnet(
    dump_path: Location,
    languages: Sequence[str],
    out_dir: Location,
    paper_compat: bool = False,
    *,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    line_by_line: bool = False,
) -> dict[str, Any]:
    """Stream a dump into `<out_dir>/<code>.txt` per language (UTF-8, one sentence per line, dump order).

    The files appear together once the whole dump is read and the malformed share is below
    `max_bad_fraction`, or not at all. Returns {"languages": statistics by language, "dump": dump-wide counts}
    as in `conceptnet_sentences`; memory does not grow with the dump.
    """
    scan = _Scan(dump_path, list(dict.fromkeys(languages)), paper_compat, max_bad_fraction, line_by_line)
    with AtomicFileSet(out_dir, [f"{code}.txt" for code in scan.codes.values()]) as out:
        for texts in scan:
            for lang, text in texts.items():
                out.files[f"{scan.codes[lang]}.txt"].write(text)
        dump = scan.finish()
        out.commit()
    return {"languages": scan.language_stats(), "dump": dump}
