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

from collections.abc import Sequence
from typing import Any

from seqeval.metrics import f1_score as seq_f1
from seqeval.metrics import precision_score as seq_precision
from seqeval.metrics import recall_score as seq_recall
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score

from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.llm.parsing import INVALID, Parsed
from lrl_utils.llm.prompts import DEFAULT_LABELS, label_index, tag_names

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
