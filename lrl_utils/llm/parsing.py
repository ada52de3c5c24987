"""Parsers of LLM answers: a topic or sentiment label (with synonyms, numbering, reasoning blocks) and NER entity lists aligned to the gold tokens; an unparseable answer is invalid."""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.data.sentiment import SENTIMENT_LABELS

INVALID = -1  # the prediction id of an invalid answer: it matches no gold label


@dataclass(frozen=True)
class Parsed:
    value: Any  # tc/sa: label index (None if invalid); ner: IOB2 tag strings, one per token
    valid: bool
    reason: str  # "ok", or why the answer is invalid / what was dropped
    dropped: int = 0  # ner: entities dropped (not in the text, other type, malformed)


# --------------------------------------------------------------------------------------------------
# Label answers

_PREFIX = re.compile(
    r"^(?:the\s+)?(?:final\s+|correct\s+|predicted\s+)?"
    r"(?:answer|category|label|topic|class|sentiment|prediction|output|response)\b\s*(?:is\b)?\s*[:=\-–]?\s*",
    re.IGNORECASE,
)
_EDGE = " \t\r\n\"'“”‘’«»()[]{}<>.,;:!?-–—*`#>"


def _strip_reasoning(answer: Any) -> tuple[str, str | None]:
    """The answer after any reasoning block, and a reason when the answer is unusable."""
    text = "" if not isinstance(answer, str) else answer
    low = text.lower()
    if "</think>" in low:
        text = text[low.rfind("</think>") + len("</think>") :]
    elif "<think>" in low:
        return "", "unfinished reasoning"
    text = text.strip()
    return text, (None if text else "empty answer")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\*\*|__|`", " ", text)


def _core(line: str) -> str:
    """A line with leading answer prefixes, markdown, quotes and edge punctuation stripped, folded."""
    text = _fold(line).strip(_EDGE)
    for _ in range(3):
        stripped = _PREFIX.sub("", text, count=1).strip(_EDGE)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split())


def _simple_pattern(form: str) -> str:
    body = form[:-1] if form.endswith("s") and len(form) > 3 else form
    return r"(?<!\w)" + r"\s+".join(re.escape(w) for w in body.split()) + r"s?(?!\w)"


@lru_cache(maxsize=64)
def _matcher(forms: tuple[tuple[str, ...], ...], whole_only: tuple[tuple[str, ...], ...]):
    """Per label: mention patterns (pattern, label, compound parts or None); whole-answer-only forms → label."""
    patterns = []
    whole: dict[str, set[int]] = {}
    for lab, names in enumerate(forms):
        for form in (_fold(f).strip() for f in names):
            parts = [p.strip() for p in form.split("/")]
            if len(parts) == 2 and all(len(p) >= 3 for p in parts):
                a, b = parts
                sep = r"\s*(?:/|&|\+|-|\band\b)\s*"
                pat = rf"(?<!\w)({re.escape(a[:3])}\w*){sep}({re.escape(b[:3])}\w*)(?!\w)"
                patterns.append((re.compile(pat), lab, (a, b)))
                for part in parts:
                    whole.setdefault(part, set()).add(lab)
            else:
                patterns.append((re.compile(_simple_pattern(form)), lab, None))
        for form in whole_only[lab]:
            whole.setdefault(_fold(form), set()).add(lab)
    # a whole-answer form that another label also matches is ambiguous: dropped
    mentioned = {f: {lab for pat, lab, _ in patterns if pat.fullmatch(f)} for f in whole}
    unique = {f: next(iter(labs)) for f, labs in whole.items() if len(labs | mentioned[f]) == 1}
    return patterns, unique


def _mentions(text: str, patterns) -> list[tuple[int, int, int]]:
    spans = []
    for pat, lab, parts in patterns:
        for m in pat.finditer(text):
            if parts and not (parts[0].startswith(m.group(1)) and parts[1].startswith(m.group(2))):
                continue
            spans.append((m.start(), m.end(), lab))
    # a mention inside a longer mention of another label does not count
    return [
        s
        for s in spans
        if not any(
            o[2] != s[2] and o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans
        )
    ]


def _parse_choice(answer: Any, forms, whole_only, numbered: bool) -> Parsed:
    text, problem = _strip_reasoning(answer)
    if problem:
        return Parsed(None, False, problem)
    patterns, whole = _matcher(forms, whole_only)
    n_labels = len(forms)
    stripped = _PREFIX.sub("", _fold(text).strip(_EDGE), count=1)
    first = next((line for line in stripped.splitlines() if line.strip(_EDGE)), "")
    core = _core(first)
    found = _mentions(core, patterns)
    if len(found) == 1 and found[0][0] == 0 and found[0][1] == len(core):
        return Parsed(found[0][2], True, "ok")
    if core in whole:
        return Parsed(whole[core], True, "ok")
    number = re.match(r"\(?(\d+)(?:[.):]|\s|$)", core) if numbered else None
    if number and core == number.group(1) and 1 <= int(number.group(1)) <= n_labels:
        return Parsed(int(number.group(1)) - 1, True, "ok")
    labels = {lab for _, _, lab in _mentions(_fold(text), patterns)}
    if number and 1 <= int(number.group(1)) <= n_labels:
        labels.add(int(number.group(1)) - 1)
    if len(labels) == 1:
        return Parsed(labels.pop(), True, "ok")
    return Parsed(None, False, "no label" if not labels else "several labels")


def parse_tc(answer: Any, labels: Sequence[str] = SIB_LABELS, numbered: bool = False) -> Parsed:
    """Topic label of an answer (module docstring); `value` is an index into `labels`."""
    return _parse_choice(answer, tuple((lab,) for lab in labels), tuple(() for _ in labels), numbered)


_SA_SYNONYMS = {"negative": ("unfavorable", "unfavourable"), "positive": ("favorable", "favourable")}
_SA_FORMS = tuple((lab, *_SA_SYNONYMS[lab]) for lab in SENTIMENT_LABELS)
_SA_WHOLE = tuple((lab[:3],) for lab in SENTIMENT_LABELS)  # "neg", "pos" as the whole leading answer


def parse_sa(answer: Any) -> Parsed:
    """Sentiment of an answer; `value` indexes SENTIMENT_LABELS (0 negative, 1 positive). Both or neither: invalid."""
    return _parse_choice(answer, _SA_FORMS, _SA_WHOLE, numbered=False)


def parse_tc_deepseek(decoded: Any, labels: Sequence[str] = SIB_LABELS) -> Parsed:
    """The paper's DeepSeek parsing (SPEC §6), on the decoded prompt + output: the text after the first
    ``Answer:`` (``re.search(r"Answer:\\s*(.*)", ..., re.IGNORECASE)``, to the end of that line; ``\\s*`` may
    skip a line break) is searched for every lower-cased category as a plain substring; exactly one is valid.
    Without "Answer:" the original matched the categories against the string "invalid"; so does this."""
    text = decoded.strip() if isinstance(decoded, str) else ""
    m = re.search(r"Answer:\s*(.*)", text, re.IGNORECASE)
    extracted = m.group(1).strip() if m else "invalid"
    matched = [i for i, cat in enumerate(labels) if cat.lower() in extracted.lower()]
    if len(matched) == 1:
        return Parsed(matched[0], True, "ok")
    if not m:
        return Parsed(None, False, "no 'Answer:'")
    return Parsed(None, False, "no label" if not matched else "several labels")


# --------------------------------------------------------------------------------------------------
# NER answers

_TYPES = {
    **dict.fromkeys(("PER", "PERSON", "PERSONS", "PEOPLE"), "PER"),
    **dict.fromkeys(("ORG", "ORGANIZATION", "ORGANISATION", "ORGANIZATIONS", "ORGANISATIONS"), "ORG"),
    **dict.fromkeys(("LOC", "LOCATION", "LOCATIONS", "PLACE", "GPE"), "LOC"),
}
_TEXT_KEYS = ("text", "entity", "name", "span", "word", "value")
_TYPE_KEYS = ("type", "label", "entity_type", "category", "tag", "class")


def _balanced_end(text: str, start: int) -> int | None:
    """Index of the bracket closing the one at `start`, skipping quoted strings."""
    depth, quote, escaped = 0, None, False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _decode_at(text: str, start: int) -> Any:
    try:
        return json.JSONDecoder().raw_decode(text, start)[0]
    except ValueError:
        pass
    end = _balanced_end(text, start)
    if end is None:
        return None
    snippet = text[start : end + 1]
    try:
        return json.loads(re.sub(r",\s*([\]}])", r"\1", snippet))
    except ValueError:
        pass
    if len(snippet) > 100_000:
        return None
    try:
        return ast.literal_eval(snippet)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _entity_list(text: str) -> list | None:
    fenced = [m.group(1) for m in re.finditer(r"```[a-zA-Z]*\s*(.*?)```", text, re.S)]
    for cand in [*fenced, text]:
        for start in [i for i, ch in enumerate(cand) if ch == "["][:200]:
            value = _decode_at(cand, start)
            if isinstance(value, list) and (
                not value or any(isinstance(e, (dict, list, tuple)) for e in value)
            ):
                return value
    return None


def _entry(entry: Any) -> tuple[str, str] | str:
    """(text, type) of one entry, or why it is dropped."""
    if isinstance(entry, dict):
        keys = {str(k).strip().lower(): v for k, v in entry.items()}
        text = next((keys[k] for k in _TEXT_KEYS if isinstance(keys.get(k), str)), None)
        typ = next((keys[k] for k in _TYPE_KEYS if isinstance(keys.get(k), str)), None)
    elif isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(e, str) for e in entry):
        text, typ = entry
    else:
        return "malformed"
    if text is None or typ is None or not text.strip(" \t\n\"'"):
        return "malformed"
    typ = re.sub(r"^[BI][-_]", "", typ.strip().upper())
    if typ not in _TYPES:
        return "of another type"
    return text.strip(" \t\n\"'"), _TYPES[typ]


def _find_span(tokens: Sequence[str], entity: str, tags: list[str]) -> tuple[int, int] | None:
    """The first untagged run of `tokens` that spells `entity` (spaces aside; exactly, else case-folded), both
    sides in NFC: an answer in composed characters matches a text written with combining marks, and back."""
    target = unicodedata.normalize("NFC", "".join(entity.split()))
    tokens = [unicodedata.normalize("NFC", t) for t in tokens]
    for fold in (False, True):
        goal = target.casefold() if fold else target
        for i in range(len(tokens)):
            acc = ""
            for j in range(i, len(tokens)):
                if tags[j] != "O":
                    break
                acc += tokens[j].casefold() if fold else tokens[j]
                if acc == goal:
                    return i, j + 1
                if not goal.startswith(acc):
                    break
    return None


def parse_ner(answer: Any, tokens: Sequence[str]) -> Parsed:
    """IOB2 tags for `tokens` from an answer listing entities as JSON (module docstring)."""
    tags = ["O"] * len(tokens)
    text, problem = _strip_reasoning(answer)
    if problem:
        return Parsed(tags, False, problem)
    entries = _entity_list(text)
    if entries is None:
        return Parsed(tags, False, "no JSON array of entities")
    dropped: Counter[str] = Counter()
    for entry in entries:
        got = _entry(entry)
        if isinstance(got, str):
            dropped[got] += 1
            continue
        span = _find_span(tokens, got[0], tags)
        if span is None:
            dropped["not in the text"] += 1
            continue
        tags[span[0] : span[1]] = [f"B-{got[1]}"] + [f"I-{got[1]}"] * (span[1] - span[0] - 1)
    reason = "; ".join(f"{c} entit{'y' if c == 1 else 'ies'} {why}" for why, c in dropped.items()) or "ok"
    return Parsed(tags, True, reason, dropped=sum(dropped.values()))
