"""WikiANN NER data (SPEC §5.2): CoNLL files (the hub release's or the XTREME/PAN-X layout), or the hub dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lrl_utils.data.sources import (
    DataSourceError,
    Location,
    _datasets,
    _from_hub,
    _is_hub,
)
from lrl_utils.data.task_data import TaskOptions, _Options, _Tally, _text_lines
from lrl_utils.data.task_files import (
    SPLITS,
    conll_fields,
    locate_wikiann,
    where_read,
)
from lrl_utils.data.text_files import read_bytes, refuse_gzip

if TYPE_CHECKING:
    import datasets
    from typing_extensions import Unpack

NER_TAGS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
WIKIANN_HUB = "unimelb-nlp/wikiann"

WIKIANN_HINT = "`data.wikiann` at a folder of CoNLL files (train, dev, test: token<TAB>tag lines)"
# ----------------------------------------------------------------------------------------------------------
# WikiANN NER


def _not_iob2(tag: str, previous: str) -> tuple[str, str]:
    """Why `tag` cannot follow `previous` in IOB2 (WikiANN's scheme: an entity starts with B-), or ("", "")."""
    if tag.startswith("I-") and previous not in (f"B-{tag[2:]}", tag):
        return "not IOB2", f"{tag!r} after {previous!r}"
    return "", ""


def _conll_sentences(file: Path, iso2: str, tally: _Tally) -> list[tuple[list[str], list[int]]]:
    """Sentences of a CoNLL `token<TAB>tag` file; bad sentences are counted in `tally` and left out."""
    sentences: list[tuple[list[str], list[int]]] = []
    tokens: list[str] = []
    tags: list[int] = []
    problem: tuple[str, str, str] | None = None
    prefix, prefixed = f"{iso2}:", None
    data = read_bytes(file)
    refuse_gzip(data, file)
    for n, line, bad_text in [*_text_lines(data), (0, "", "")]:
        if not bad_text and not line.strip():  # a sentence ends (the extra last line ends the last one)
            if tokens or problem:
                tally.records += 1
                if problem:
                    tally.bad.add(*problem)
                else:
                    sentences.append((tokens, tags))
            tokens, tags, problem = [], [], None
            continue
        fields, why = conll_fields(line), ("", "")
        if bad_text:
            why = (bad_text, "")
        elif len(fields) != 2:
            why = ("wrong column count", f"{len(fields)} tab-separated columns, expected 2: token<TAB>tag")
        else:
            token, tag = fields[0], fields[1].strip()
            prefixed = token.startswith(prefix) if prefixed is None else prefixed
            token = token.removeprefix(prefix) if prefixed else token
            if not token.strip():
                why = ("empty token", "")
            elif tag not in NER_TAGS:
                why = ("unknown tag", repr(tag))
            elif (why := _not_iob2(tag, NER_TAGS[tags[-1]] if tags else "O"))[0]:
                pass
            else:
                tokens.append(token)
                tags.append(NER_TAGS.index(tag))
        if why[0] and problem is None:
            problem = (f"{file}:{n}", *why)
    return sentences


def _wikiann_hub(iso2: str, opts: _Options) -> dict[str, list]:
    hub = _from_hub(WIKIANN_HUB, iso2, WIKIANN_HINT)
    splits: dict[str, list] = {}
    for split in SPLITS:
        if split not in hub:
            raise DataSourceError(f"{WIKIANN_HUB} ({iso2}): no {split} split (has {', '.join(hub)})")
        rows, tally = hub[split], opts.tally(split, f"{WIKIANN_HUB} ({iso2}) {split}")
        names = list(getattr(getattr(rows.features["ner_tags"], "feature", None), "names", None) or NER_TAGS)
        splits[split] = []
        for i, (tokens, ids) in enumerate(zip(rows["tokens"], rows["ner_tags"], strict=True)):
            tally.records += 1
            tags = [names[t] if 0 <= t < len(names) else str(t) for t in ids]
            unknown = [t for t in tags if t not in NER_TAGS]
            at = f"{tally.where} row {i}"
            if not tokens:
                tally.bad.add(at, "empty sentence")
            elif len(tokens) != len(tags):
                tally.bad.add(at, "tokens and tags differ in number", f"{len(tokens)} and {len(tags)}")
            elif unknown:
                tally.bad.add(at, "unknown tag", repr(unknown[0]))
            elif why := next(
                (w for t, p in zip(tags, ["O", *tags[:-1]], strict=True) if (w := _not_iob2(t, p))[0]), None
            ):
                tally.bad.add(at, *why)
            else:
                splits[split].append((list(tokens), [NER_TAGS.index(t) for t in tags]))
    return splits


def load_wikiann(
    location: Location,
    iso2: str,
    *,
    iso3: str | None = None,
    **options: Unpack[TaskOptions],
) -> datasets.DatasetDict:
    """WikiANN NER of one language: splits train/validation/test, columns `tokens` and `ner_tags` (NER_TAGS).

    `location`: "hub" (`unimelb-nlp/wikiann`, config `iso2`), a local folder or one CoNLL file (module
    docstring; `locate_wikiann`); `iso3` names one more folder to look in (`shared/data/wikiann/mlt` for `mt`).
    `options` (`TaskOptions`): `max_bad_fraction`; `missing_splits` (`error` | `carve`) and `seed`, the profile's
    `finetune.ner.missing_splits` and `split_seed`; `stats` (module docstring).
    """
    opts = _Options("ner", **options)
    if _is_hub(location):
        where, found = f"{WIKIANN_HUB} ({iso2})", _wikiann_hub(iso2, opts)
    else:
        files = locate_wikiann(location, iso2, iso3)
        where = where_read(files)
        found = {split: _conll_sentences(f, iso2, opts.tally(split, str(f))) for split, f in files.items()}
    ds = _datasets()
    tags = ds.List(ds.ClassLabel(names=list(NER_TAGS)))
    return opts.finish(found, where, "sentence", {"tokens": ds.List(ds.Value("string")), "ner_tags": tags})
