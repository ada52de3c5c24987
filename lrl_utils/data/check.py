"""Is the local data of a grid where its loaders will look, in the layout they read? (`run_all.sh --dry-run`)

For every language × dataset the runs of a grid read from a local path (`data.*` keys that are not `hub`; the
demo world is generated later and not checked), the loader's own locate step runs (`flores_sib.locate_flores`
and `locate_sib200`, `task_files.locate_wikiann` and `locate_sentiment`, `glotcc.glotcc_files`; so the check and
the loader never disagree), then the first line of each file found is checked against what its reader expects:
a header, a column count, a JSON object with the text key, a parquet column. The evaluation data (FLORES,
SIB-200, sentiment, WikiANN: small files) are then read whole by the stage's own loader with the run's settings
(`_whole`, up to `WHOLE_READ_BYTES`), so a bad row deep in a file stops the grid before any compute; web text
and ConceptNet dumps (gigabytes) are checked by their first lines only. For SA and NER, splits the files lack
are an error here too unless the profile's `finetune.<task>.missing_splits` is `carve`. Each problem is one line naming the profile key, the path as the profile wrote it, and the file
expected: `data.sib200: ../x/sib200: no train.tsv for mlt_Latn (looked for ../x/sib200/mlt/train.tsv, ...)`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from lrl_utils.config import paths
from lrl_utils.config.specs import AdaptSpec, FinetuneSpec, LLMSpec, PPPLSpec, PreprocessSpec, Spec
from lrl_utils.data.conceptnet_sentences import locate as locate_sentences
from lrl_utils.data.flores_sib import locate_flores, locate_sib200
from lrl_utils.data.glotcc import glotcc_files
from lrl_utils.data.sentiment import SENTIMENT_FORMATS
from lrl_utils.data.sources import DataSourceError
from lrl_utils.data.task_files import (
    check_missing_splits,
    conll_fields,
    locate_sentiment,
    locate_wikiann,
    sentiment_name,
    where_read,
)
from lrl_utils.data.text_files import (
    GZIP_MAGIC,
    Quoting,
    header_error,
    json_value,
    nul_error,
    records,
    refuse_gzip,
    tsv_quoting,
)


def _first_lines(
    file: Path, n: int = 1, skip_blank: bool = False, gzip_ok: bool = False
) -> list[tuple[int, str]]:
    """Up to `n` first lines of a text file as (line number, text), without line ends and a UTF-8 BOM;
    `skip_blank`: blank lines do not count (as the CoNLL and JSON-lines readers skip them). A gzip file is
    read decompressed with `gzip_ok` (the ConceptNet dump), else it is the loaders' error (`refuse_gzip`)."""
    out: list[tuple[int, str]] = []
    gzipped = _gzipped(file)
    if gzipped and not gzip_ok:
        refuse_gzip(GZIP_MAGIC, file)
    try:
        with (gzip.open if gzipped else open)(file, "rb") as f:
            for number, raw in enumerate(iter(lambda: f.readline(1 << 20), b""), start=1):
                try:
                    text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise DataSourceError(f"{file}:{number}: not valid UTF-8 text") from None
                if "\0" in text:
                    raise nul_error(file, number)
                if skip_blank and not text.strip():
                    continue
                out.append((number, text))
                if len(out) == n:
                    break
    except (OSError, EOFError) as exc:
        raise DataSourceError(f"{file}: unreadable ({exc})") from None
    return out


def _first(file: Path, skip_blank: bool = False, gzip_ok: bool = False) -> tuple[int, str]:
    """(number, text) of the first line of a text file ((1, "") when it has none; `_first_lines`)."""
    first = _first_lines(file, 1, skip_blank, gzip_ok)
    return first[0] if first else (1, "")


def _first_line(file: Path, skip_blank: bool = False, gzip_ok: bool = False) -> str:
    return _first(file, skip_blank, gzip_ok)[1]


def _gzipped(file: Path) -> bool:
    try:
        with open(file, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise DataSourceError(f"{file}: unreadable ({exc})") from None


def _names(file: Path, line: str, quoting: Quoting | None, delimiter: str = "\t") -> list[str]:
    """The column names of a header line, unquoted only where the readers unquote them (`tsv_quoting`: a .csv
    file, the SIB-200 repository's layout, or `data.quoting.<dataset>: csv`), stripped as they strip them."""
    return [
        name.strip() for name in next(records([line], tsv_quoting(file, quoting), str(file), delimiter))[2]
    ]


def _header(file: Path, columns: tuple[str, ...], quoting: Quoting | None = None) -> None:
    found = _first_line(file)
    if _names(file, found, quoting) != list(columns):  # as `text_files.read_tsv` compares
        raise header_error(file, columns, found)


def _columns(file: Path, quoting: Quoting | None = None) -> list[str]:
    """The column names of a sentiment file: its header (.tsv, .csv; as `sentiment._rows` reads it) or the keys
    of its first JSON object."""
    n, line = _first(file, skip_blank=file.suffix == ".jsonl")  # the JSON-lines reader skips blank lines
    if file.suffix == ".jsonl":
        try:
            obj = json_value(line)
        except json.JSONDecodeError as exc:
            raise DataSourceError(f"{file}:{n}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataSourceError(f"{file}:{n}: not a JSON object")
        return list(obj)
    return _names(file, line, quoting, "\t" if file.suffix == ".tsv" else ",") if line else [""]


# ----------------------------------------------------------------------------------------------------------
# One check per dataset kind: locate the files, then look at their first line


def check_flores(path: Path, flores_code: str, quoting: Quoting | None = None) -> list[Path]:
    file = locate_flores(path, flores_code)
    if file.suffix == ".tsv":
        _header(file, ("id", "sentence"), quoting)
    else:
        _first_line(file)
    return [file]


def check_sib200(path: Path, flores_code: str, quoting: Quoting | None = None) -> list[Path]:
    files = locate_sib200(path, flores_code)
    for split, file in files.items():
        _header(file, ("index_id", "category", "text"), quoting)
        if not any(text.strip() for _, text in _first_lines(file, 2)[1:]):
            raise DataSourceError(f"{file}: no rows after the header (the {split} split of {flores_code})")
    return list(files.values())


def check_wikiann(path: Path, iso2: str, iso3: str, missing_splits: str) -> list[Path]:
    files = locate_wikiann(path, iso2, iso3)
    for file in files.values():
        n, line = _first(file, skip_blank=True)  # the reader skips blank lines
        if (columns := len(conll_fields(line))) != 2:
            raise DataSourceError(
                f"{file}:{n}: {columns} tab-separated columns, expected 2 (CoNLL token<TAB>tag)"
            )
    check_missing_splits(list(files), where_read(files), "ner", missing_splits)
    return list(files.values())


def check_sentiment(
    path: Path, dataset: str, iso3: str, missing_splits: str, quoting: Quoting | None = None
) -> list[Path]:
    files = locate_sentiment(path, dataset, iso3)
    name = sentiment_name(dataset)[1]
    for file in files.values():
        columns = set(_columns(file, quoting))
        if not any(
            {f.text, f.label} <= columns and file.suffix in f.suffixes and name in (f.datasets or [name])
            for f in SENTIMENT_FORMATS
        ):
            raise DataSourceError(
                f"{file}:1: no known text and label columns among {sorted(columns)[:8]} (see SENTIMENT_FORMATS)"
            )
    check_missing_splits(list(files), where_read(files), "sa", missing_splits)
    return list(files.values())


def check_glotcc(path: Path, glotcc_code: str) -> list[Path]:
    files = glotcc_files(path, glotcc_code)
    for file in files:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                names = pq.read_schema(file).names
            except Exception as exc:  # pyarrow raises several types for a broken footer
                raise DataSourceError(f"{file}: not a readable parquet file ({exc})") from None
            if not {"content", "text"} & set(names):
                raise DataSourceError(f"{file}: no `content` or `text` column (has {', '.join(names[:8])})")
        elif file.suffix == ".jsonl":
            line = _first_line(file)
            if line.strip() and not {"content", "text"} & set(_columns(file)):
                raise DataSourceError(f"{file}:1: expected a JSON object with key content or text")
        else:
            _first_line(file)
    return list(files)


def check_conceptnet(path: Path, code: str, language: str) -> list[Path]:
    if path.is_dir():  # sentences already verbalised, or edge lists, per language (`conceptnet_sentences`)
        files = locate_sentences(path, code, language)
        for split, file in files.items():
            if split == "edges":
                n, line = _first(file, skip_blank=True)
                if not line.lstrip().startswith(("{", "[")):
                    raise DataSourceError(f"{file}:{n}: expected JSON (ConceptNet edges)")
            elif [c.strip() for c in _first_line(file).split(",")] != ["text"]:
                raise DataSourceError(f"{file}:1: expected the header 'text' (one column)")
        return list(files.values())
    if not path.is_file():
        raise DataSourceError(
            f"{path}: not a file or folder (the ConceptNet assertions dump, .csv or .csv.gz, or a folder of "
            "verbalised sentences)"
        )
    columns = len(_first_line(path, gzip_ok=True).split("\t"))
    if columns != 5:
        raise DataSourceError(
            f"{path}:1: {columns} tab-separated columns, expected 5 (edge, relation, start, end, JSON)"
        )
    return []  # one dump holds every language


# ----------------------------------------------------------------------------------------------------------
# The evaluation data read whole, by the loaders the stages call

# Data files larger than this in all are checked by their first lines only
WHOLE_READ_BYTES = 64 * 1024**2


def _small(files: list[Path]) -> bool:
    """Whether `files` are few enough bytes (`WHOLE_READ_BYTES`) to be read whole before any run starts."""
    return bool(files) and sum(f.stat().st_size for f in files) <= WHOLE_READ_BYTES


def _whole(spec: Spec, key: str) -> Callable[[Path], object] | None:
    """The loader call that the run of `spec` makes for its data `key`, with the run's settings (quoting, bad
    records allowed, missing splits and their seed); None for the data read by first lines only."""
    from lrl_utils.data.flores_sib import load_flores_devtest, load_sib200
    from lrl_utils.data.sentiment import load_sentiment
    from lrl_utils.data.wikiann import load_wikiann

    if key == "flores":
        return lambda path: load_flores_devtest(
            path, spec.flores_code, quoting=spec.quoting, sample=spec.samples
        )
    if key == "sib200":
        return lambda path: load_sib200(path, spec.flores_code, quoting=spec.quoting)
    if key not in ("sentiment", "wikiann"):
        return None
    if isinstance(spec, FinetuneSpec):
        rule = {"missing_splits": spec.train.missing_splits, "seed": spec.train.split_seed}
    else:
        rule = {"missing_splits": spec.missing_splits, "seed": spec.split_seed}
    options = {"iso3": spec.language, "max_bad_fraction": spec.max_bad_fraction, "stats": {}, **rule}
    if key == "sentiment":
        return lambda path: load_sentiment(path, spec.flores_code, quoting=spec.quoting, **options)
    return lambda path: load_wikiann(path, spec.flores_code, **options)


def _read_whole(spec: Spec, key: str, resolved: Path, files: list[Path]) -> None:
    """Read the files of `key` whole with the run's loader (`_whole`) when they are small enough; a bad row is the
    loader's own one-line error (`DataSourceError`, naming the file and line)."""
    load = _whole(spec, key)
    if load is not None and _small(files):
        load(resolved)


def _split(spec: PreprocessSpec, resolved: Path, files: list[Path], adapted: bool) -> None:
    """A small corpus split as its preprocess run will split it (`preprocess.split_source`, into a temporary
    folder): a bad row deep in a ConceptNet sentence or edge file is found here, and, for a corpus a language
    adapter trains on (`adapted`), a train or val split without a document (a corpus of a handful of documents
    may hash none into val), which adaptation would find only after pre-training."""
    import tempfile

    from lrl_utils.data.preprocess import split_source

    if not _small(files) or (spec.source == "glotcc" and not adapted):
        return
    with tempfile.TemporaryDirectory() as tmp:
        stats = split_source(spec, resolved, Path(tmp))
    splits = stats["splits"]
    empty = [
        name
        for name in ("train", "val")
        if not splits[name]["documents"] and not splits[name].get("over_cap")
    ]
    if empty and adapted:
        counts = ", ".join(f"{name} {split['documents']}" for name, split in splits.items())
        raise DataSourceError(
            f"{files[0]}: the {' and '.join(empty)} split of {spec.code} gets no document ({counts}; split "
            "80/10/10 by a hash of each document), so no language adapter can train on it: give it more text, "
            "or leave the language out of `languages` and evaluate it on the base model (`task_languages`)"
        )


# ----------------------------------------------------------------------------------------------------------
# The grid


def _reads(spec: Spec) -> Iterator[tuple[str, str, tuple, Callable[..., list[Path]]]]:
    """(data key, location as in the spec, arguments, check) of each dataset a run reads."""
    if getattr(spec, "world", None):
        return
    if isinstance(spec, PreprocessSpec):
        if spec.source == "glotcc":
            yield "glotcc", spec.location, (spec.code,), check_glotcc
        else:
            yield "conceptnet", spec.location, (spec.code, spec.language), check_conceptnet
    elif isinstance(spec, PPPLSpec):
        yield "flores", spec.devtest, (spec.flores_code, spec.quoting), check_flores
    elif isinstance(spec, (FinetuneSpec, LLMSpec)):
        rule = spec.train.missing_splits if isinstance(spec, FinetuneSpec) else spec.missing_splits
        if spec.task == "tc":
            yield "sib200", spec.dataset, (spec.flores_code, spec.quoting), check_sib200
        elif spec.task == "sa":
            args = (spec.flores_code, spec.language, rule, spec.quoting)
            yield "sentiment", spec.dataset, args, check_sentiment
        else:
            yield "wikiann", spec.dataset, (spec.flores_code, spec.language, rule), check_wikiann


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The loaders' warning per bad record (`BadRecords.add`) silenced: the check prints one line a problem."""
    logger = logging.getLogger("lrl_utils.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _one_line(err: OSError | UnicodeError) -> DataSourceError:
    """An error a loader did not word (an unreadable folder, a text it could not encode) as one line."""
    if isinstance(err, OSError) and err.filename:
        return DataSourceError(f"{err.filename}: unreadable ({err.strerror or err})")
    return DataSourceError(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


def check_data(specs: list[Spec]) -> list[str]:
    """One line per problem with the local data the runs `specs` read (none: every file is where it should be).

    A file found for two languages is a problem too: a folder holding one language's files (`train.tsv`,
    `devtest.tsv`, ...) would serve it to every language of the grid."""
    problems, seen = [], set()
    owner: dict[tuple[str, Path], str] = {}  # (data key, file) -> the language it was found for
    adapted = {s.corpus for s in specs if isinstance(s, AdaptSpec)}  # the corpora language adapters train on
    for spec in specs:
        for key, location, args, check in _reads(spec):
            if (
                location == "hub"
                or location.startswith(("http://", "https://"))
                or (key, location, args) in seen
            ):
                continue
            seen.add((key, location, args))
            resolved = paths.resolve(location)
            try:
                files = check(resolved, *args)
                with _quiet():  # bad records under `max_bad_fraction`: the run reports them
                    _read_whole(spec, key, resolved, files)
                    if isinstance(spec, PreprocessSpec) and (key == "glotcc" or resolved.is_dir()):
                        _split(spec, resolved, files, spec.folder() in adapted)
            except (DataSourceError, OSError, UnicodeError) as err:  # OSError: a folder it may not list
                err = err if isinstance(err, DataSourceError) else _one_line(err)
                message = str(err).replace(str(resolved), location)
                problem = f"data.{key}: {'' if message.startswith(location) else f'{location}: '}{message}"
                if problem not in problems:  # a missing location: once, not per language
                    problems.append(problem)
                continue
            language = str(args[0]) if args else ""
            for file in files:
                first = owner.setdefault((key, file.resolve()), language)
                if first != language:
                    shown = str(file).replace(str(resolved), location)
                    problems.append(
                        f"data.{key}: {shown} is found for both {first} and {language}: give a folder with each "
                        "language's files under its code (or one file per language), not one language's files"
                    )
                    break
    return problems


def print_problems(specs: list[Spec], before_running: bool = False) -> int:
    """`check_data`'s problems printed to stderr as `error: ...` lines (and, `before_running`, that nothing ran);
    returns their number."""
    problems = check_data(specs)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems and before_running:
        print(f"nothing run: {len(problems)} problem(s) with the local data above", file=sys.stderr)
    return len(problems)
