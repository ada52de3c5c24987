"""Parsing and scoring of LLM answers (SPEC §6): robust parsers, honest metrics, and the paper's own scorings.

Every parser returns `Parsed(value, valid, reason, dropped)`; invalid answers are scored as wrong.

Label answers (`parse_tc`, `parse_sa`), in order:

1. Reasoning: text up to the last ``</think>`` is dropped (R1-style models); an unclosed ``<think>`` (cut off
   by the token limit) is invalid, "unfinished reasoning". An empty answer is invalid, "empty answer".
2. Leading answer: the first non-empty line, after a leading "Answer:" / "Category:" / "The answer is"…,
   markdown (``**``, backticks, ``#``), quotes, brackets and trailing punctuation are stripped, is taken if it
   is exactly one label form (below), a compound-label part, or, for a `numbered` prompt, a choice number
   (1-based). This reads "Sports.\\nExplanation: … not politics …" and raw completions that go on with an
   invented next example ("sports\\nText: … Answer: politics") as sports.
3. Otherwise every label mentioned anywhere counts, case-insensitively and on word boundaries (``travel`` is
   not found in "travelogue"; "health-related" does name health): exactly one distinct label is valid, none is
   "no label", several are "several labels" (no negation analysis: "not sports but politics" is invalid).
   A mention inside a longer mention of another label is ignored. For a numbered prompt a leading number
   counts as a mention too (so "3. travel" with 3 = politics is "several labels").

Label forms: the name, its plural or singular (``sport``/``sports``); a compound name ``a/b`` also as
``a / b``, ``a and b``, ``a & b``, ``a-b`` and abbreviations whose parts are prefixes of at least three letters
(``sci/tech``, ``sci-tech``); a part alone (``technology``) only as the whole leading answer and only if no
other label has that form (unambiguous). Sentiment also accepts favo(u)rable / unfavo(u)rable, and ``pos`` /
``neg`` as the whole leading answer.

NER (`parse_ner`): the first JSON array of entity objects, looked for in ```` ``` ```` fences first, then in
the whole answer, prose around it allowed; where strict JSON fails, trailing commas are removed, and Python
literal syntax (single quotes) is read with `ast.literal_eval` (literals only, never code). Entries are
``{"text", "type"}`` (also keys entity/name/span/word, label/entity_type/category/tag) or ``[text, type]``;
types PER/ORG/LOC, also PERSON, ORGANIZATION/ORGANISATION, LOCATION, GPE, B-/I- prefixes. Each entity is
placed on the first unused token span whose concatenated tokens equal the entity text with its whitespace
removed (so "Obama (politician)" matches the tokens ``Obama ( politician )``), case-sensitive first, then
case-insensitive; a span is unused if none of its tokens is tagged yet, so a repeated entity takes the next
occurrence (list an entity once per occurrence). Entities not found, with another type (MISC, DATE) or
malformed are dropped and counted (`dropped`, `reason`); the answer stays valid. No array: invalid, all O.
"""

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

from seqeval.metrics import f1_score as seq_f1
from seqeval.metrics import precision_score as seq_precision
from seqeval.metrics import recall_score as seq_recall
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score

from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.data.sentiment import SENTIMENT_LABELS
from lrl_utils.llm.prompts import DEFAULT_LABELS, label_index, tag_names

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
    target = "".join(entity.split())
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


# --------------------------------------------------------------------------------------------------
# Scores


def score(
    task: str, golds: Sequence[Any], parsed: Sequence[Parsed], labels: Sequence[str] | None = None
) -> dict:
    """Metrics over ALL items, invalid answers counted as wrong, plus `f1_paper_compat` on valid items only.

    tc/sa (`golds`: label indices or names; `labels` default SIB_LABELS / SENTIMENT_LABELS): ``f1`` is the
    macro-F1 over all labels (``labels=range(len(labels))``, as the paper's DeepSeek script passed all
    categories; an invalid answer is the id -1, a miss for its gold class), ``accuracy``, ``invalid_rate``,
    ``n``, ``n_valid`` and ``f1_paper_compat``, the paper's DeepSeek F1: the same macro-F1 on the valid items
    only (0 if none). ner (`golds`: tag sequences, ids or IOB2 strings): seqeval entity micro-F1 over all
    sentences (``f1``, default/conlleval mode as in `ner.py`; ``f1_strict``: strict IOB2; ``precision``,
    ``recall``), invalid answers as all O; ``f1_paper_compat`` on valid sentences only; ``dropped_entities``."""
    if len(golds) != len(parsed):
        raise ValueError(f"{len(golds)} golds but {len(parsed)} parsed answers")
    if not golds:
        raise ValueError("no items to score")
    n = len(golds)
    valid = [p.valid for p in parsed]
    n_valid = sum(valid)
    out: dict[str, Any] = {"n": n, "n_valid": n_valid, "invalid_rate": (n - n_valid) / n}
    if task in ("tc", "sa"):
        names = tuple(labels or DEFAULT_LABELS[task])
        ids = list(range(len(names)))
        gold = [label_index(g, names) for g in golds]
        pred = [p.value if p.valid else INVALID for p in parsed]
        out["f1"] = float(f1_score(gold, pred, labels=ids, average="macro", zero_division=0))
        out["accuracy"] = sum(g == p for g, p in zip(gold, pred, strict=True)) / n
        vg = [g for g, v in zip(gold, valid, strict=True) if v]
        vp = [p for p, v in zip(pred, valid, strict=True) if v]
        out["f1_paper_compat"] = (
            float(f1_score(vg, vp, labels=ids, average="macro", zero_division=0)) if vg else 0.0
        )
        return out
    if task != "ner":
        raise ValueError(f"unknown task {task!r} (known: tc, sa, ner)")
    gold = [tag_names(g) for g in golds]
    pred = []
    for i, (g, p) in enumerate(zip(gold, parsed, strict=True)):
        tags = list(p.value) if p.valid else ["O"] * len(g)
        if len(tags) != len(g):
            raise ValueError(f"item {i}: {len(g)} gold tags but {len(tags)} predicted")
        pred.append(tags)
    out["f1"] = float(seq_f1(gold, pred, zero_division=0))
    out["f1_strict"] = float(seq_f1(gold, pred, mode="strict", scheme=IOB2, zero_division=0))
    out["precision"] = float(seq_precision(gold, pred, zero_division=0))
    out["recall"] = float(seq_recall(gold, pred, zero_division=0))
    vg = [g for g, v in zip(gold, valid, strict=True) if v]
    vp = [p for p, v in zip(pred, valid, strict=True) if v]
    out["f1_paper_compat"] = float(seq_f1(vg, vp, zero_division=0)) if vg else 0.0
    out["dropped_entities"] = sum(p.dropped for p in parsed)
    return out


def gpt_substring_score(
    responses: Sequence[Any], golds: Sequence[Any], labels: Sequence[str] = SIB_LABELS
) -> dict:
    """The paper's re-scoring of the GPT-3.5/4 SIB-200 outputs, for the record (SPEC §6; flawed on purpose).

    An item is correct iff the lower-cased response contains the gold label and no ',' or '/' (so the gold
    ``science/technology`` is never correct); "F1" = ``f1_score([1] * n, correct)`` = 2·acc/(1+acc), a
    transform of accuracy, not a macro-F1. `golds`: label names or indices into `labels`."""
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    correct = []
    for resp, gold in zip(responses, golds, strict=True):
        name = gold if isinstance(gold, str) else labels[label_index(gold, labels)]
        text = resp.lower() if isinstance(resp, str) else ""
        correct.append(int(name.lower() in text and "," not in text and "/" not in text))
    n = len(correct)
    f1 = float(f1_score([1] * n, correct, zero_division=0)) if n else 0.0
    return {"f1": f1, "accuracy": sum(correct) / n if n else 0.0, "n": n}


def emma500_macro_f1(golds: Sequence[str], predictions: Sequence[str]) -> float:
    """EMMA-500's SIB-200 score (SPEC §6): sklearn macro-F1 on the raw label strings, so every distinct wrong
    prediction string becomes a class of its own (F1 0) and lowers the average."""
    return float(f1_score(list(golds), list(predictions), average="macro", zero_division=0))
