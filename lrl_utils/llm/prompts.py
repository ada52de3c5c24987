"""Prompts of the LLM baselines (SPEC §6): templates from `params/prompts.yaml`, k-shot prompt building, cache keys.

A prompt has two forms, and the backend picks one: `Prompt.text` for raw completion (base models; the paper's
DeepSeek runs) and `Prompt.messages` for chat models (an optional system message and one user message).

Items and train examples are plain dicts: tc/sa ``{"id", "text", "label"}`` (label: an index into the label
names or the name itself), ner ``{"id", "tokens", "ner_tags"}`` (tags: ids over NER_TAGS or IOB2 strings).

Shots (`build_prompts`, k > 0): one draw with ``random.Random(seed)``, the same shots for every item of the run.

- Candidates are the train examples in their given order, minus any whose id or content (text; tokens for
  NER) equals one of the query items', so a shot can never be a query item even where ids are reused across
  splits (give ids unique across splits, e.g. ``"train-5"``, to avoid dropping innocent candidates).
- tc/sa, balanced over labels: the labels present among the candidates are shuffled, each label's examples
  are shuffled, and shots are taken round-robin over the labels (one per label per round, skipping exhausted
  labels). Label counts then differ by at most one where every label has enough examples; with k smaller than
  the number of labels, k distinct labels are drawn at random. The shots are finally shuffled, so their order
  carries no label pattern.
- ner: ``rng.sample(candidates, k)``.
- Shots are rendered with their gold answers: the label name lower-cased (tc/sa; its 1-based number for a
  `numbered` template), the gold entities as a JSON list (ner, from the IOB2 tags by `entities_from_tags`).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrl_utils.config import paths
from lrl_utils.config.params import ParamError, _help, from_dict, read_yaml, to_dict
from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.data.sentiment import SENTIMENT_LABELS
from lrl_utils.data.wikiann import NER_TAGS

TASKS: tuple[str, ...] = ("tc", "sa", "ner")
ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC")
DEFAULT_LABELS: dict[str, tuple[str, ...]] = {"tc": SIB_LABELS, "sa": SENTIMENT_LABELS, "ner": ENTITY_TYPES}

# Placeholders each field may use, and those it must use.
_CONTEXT = frozenset({"categories", "choices"})
_ALLOWED = {
    "instruction": _CONTEXT,
    "system": _CONTEXT,
    "shot": frozenset({"text", "answer"}),
    "query": frozenset({"text"}),
    "chat_query": frozenset({"text"}),
}
_REQUIRED = {
    "shot": frozenset({"text", "answer"}),
    "query": frozenset({"text"}),
    "chat_query": frozenset({"text"}),
}


@dataclass(frozen=True)
class PromptTemplate:
    instruction: str = _help("task description; placeholders {categories} and {choices}")
    shot: str = _help("one demonstration: {text} and {answer}")
    query: str = _help("the item to answer: {text}")
    separator: str = _help("between instruction, shots and query", default="\n\n")
    system: str | None = _help("chat: system message (null: none)", default=None)
    chat_query: str | None = _help(
        "chat: query block of the user message (null: same as query)", default=None
    )
    numbered: bool = _help(
        "the instruction lists numbered choices; parsers accept a bare number", default=False
    )
    zero_shot_only: bool = _help("refuse k > 0 (the DeepSeek template)", default=False)


@dataclass(frozen=True)
class Prompt:
    item_id: str
    text: str
    messages: tuple[dict[str, str], ...]


def templates_path() -> Path:
    return paths.params_dir() / "prompts.yaml"


def _placeholders(text: str, file: str, where: str) -> set[str]:
    try:
        fields = [
            (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None
        ]
    except ValueError as err:
        raise ParamError(f"{file}: `{where}`: bad format string ({err}); double literal braces") from None
    for name, spec, conv in fields:
        if not name.isidentifier():
            raise ParamError(f"{file}: `{where}`: bad placeholder {{{name}}}; double literal braces")
        # `{text:d}`, `{text!r}`: the text would be formatted, or fail when prompts are built
        if spec or conv:
            shown = name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
            raise ParamError(f"{file}: `{where}`: a placeholder is a bare name, got {{{shown}}}")
    return {name for name, _, _ in fields}


def _check_template(tpl: PromptTemplate, file: str, where: str) -> None:
    for fld, allowed in _ALLOWED.items():
        value = getattr(tpl, fld)
        if value is None:
            continue
        names = _placeholders(value, file, f"{where}.{fld}")
        unknown = sorted(names - allowed)
        if unknown:
            ok = ", ".join(f"{{{a}}}" for a in sorted(allowed))
            raise ParamError(f"{file}: `{where}.{fld}`: unknown placeholder {{{unknown[0]}}} (allowed: {ok})")
        missing = sorted(_REQUIRED.get(fld, frozenset()) - names)
        if missing:
            raise ParamError(f"{file}: `{where}.{fld}`: must contain {{{missing[0]}}}")
    if tpl.numbered and "choices" not in _placeholders(tpl.instruction, file, f"{where}.instruction"):
        raise ParamError(
            f"{file}: `{where}.numbered`: a numbered template lists {{choices}} in its instruction"
        )


def load_templates(path: str | Path | None = None) -> dict[str, dict[str, PromptTemplate]]:
    """Task → template name → PromptTemplate, validated (one-line ParamError naming the file and the key)."""
    path = Path(path) if path is not None else templates_path()
    data = read_yaml(path)
    file = paths.relative(path)
    if not isinstance(data, dict):
        raise ParamError(f"{file}: expected a mapping of tasks ({', '.join(TASKS)})")
    for task in data:
        if task not in TASKS:
            raise ParamError(f"{file}: unknown key `{task}` (known tasks: {', '.join(TASKS)})")
    out: dict[str, dict[str, PromptTemplate]] = {}
    for task in TASKS:
        group = data.get(task)
        if not isinstance(group, dict):
            raise ParamError(f"{file}: `{task}`: expected a mapping of template names, got {group!r}")
        if "default" not in group:
            raise ParamError(f"{file}: `{task}.default`: missing (every task needs a default template)")
        out[task] = {}
        for name, raw in group.items():
            where = f"{task}.{name}"
            tpl = from_dict(PromptTemplate, raw, file, where)
            _check_template(tpl, file, where)
            out[task][str(name)] = tpl
    return out


# --------------------------------------------------------------------------------------------------
# Items


def tag_names(tags: Sequence[int | str]) -> list[str]:
    """IOB2 tag strings of ids over NER_TAGS (or of tag strings, checked)."""
    out = []
    for t in tags:
        if isinstance(t, str):
            if t not in NER_TAGS:
                raise ValueError(f"unknown NER tag {t!r} (expected one of {', '.join(NER_TAGS)})")
            out.append(t)
        else:
            out.append(NER_TAGS[int(t)])
    return out


def entities_from_tags(tokens: Sequence[str], tags: Sequence[int | str]) -> list[dict[str, str]]:
    """The entities of an IOB2-tagged sentence as ``[{"text", "type"}]``, tokens joined by spaces.

    An I-X that does not continue an entity of type X starts a new one (as conlleval reads it)."""
    names = tag_names(tags)
    if len(names) != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {len(names)} tags")
    entities: list[dict[str, str]] = []
    current: list[str] = []
    kind = None
    for token, tag in zip(tokens, names, strict=True):
        prefix, _, typ = tag.partition("-")
        if prefix == "I" and kind == typ:
            current.append(token)
            continue
        if current:
            entities.append({"text": " ".join(current), "type": kind})
        current, kind = ([token], typ) if prefix in ("B", "I") else ([], None)
    if current:
        entities.append({"text": " ".join(current), "type": kind})
    return entities


def label_index(label: Any, names: Sequence[str]) -> int:
    """The index of a label given as an index or as a name (case-insensitive)."""
    if isinstance(label, str):
        lowered = [n.lower() for n in names]
        if label.lower() not in lowered:
            raise ValueError(f"unknown label {label!r} (expected one of {', '.join(names)})")
        return lowered.index(label.lower())
    index = int(label)
    if not 0 <= index < len(names):
        raise ValueError(f"label id {index} out of range for {len(names)} labels")
    return index


def _content(task: str, item: Mapping[str, Any]) -> Any:
    return tuple(item["tokens"]) if task == "ner" else item["text"]


def _render_text(task: str, item: Mapping[str, Any]) -> str:
    return " ".join(item["tokens"]) if task == "ner" else str(item["text"])


def _render_answer(task: str, item: Mapping[str, Any], names: Sequence[str], numbered: bool) -> str:
    if task == "ner":
        return json.dumps(entities_from_tags(item["tokens"], item["ner_tags"]), ensure_ascii=False)
    index = label_index(item["label"], names)
    return str(index + 1) if numbered else names[index].lower()


def _check_items(task: str, rows: Sequence[Mapping[str, Any]], what: str) -> None:
    keys = ("id", "tokens", "ner_tags") if task == "ner" else ("id", "text", "label")
    for i, row in enumerate(rows):
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"{what}[{i}]: missing key(s) {', '.join(missing)} (a {task} item has {keys})")


def sample_shots(
    task: str,
    items: Sequence[Mapping[str, Any]],
    train: Sequence[Mapping[str, Any]],
    k: int,
    seed: int = 0,
    label_names: Sequence[str] | None = None,
) -> list[Mapping[str, Any]]:
    """The k shots of a run (see the module docstring): never a query item, balanced over labels for tc/sa."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k == 0:
        return []
    names = tuple(label_names or DEFAULT_LABELS[task])
    ids = {str(it["id"]) for it in items}
    contents = {_content(task, it) for it in items}
    cands = [t for t in train if str(t["id"]) not in ids and _content(task, t) not in contents]
    if k > len(cands):
        raise ValueError(f"k={k} shots requested but only {len(cands)} train examples are not query items")
    rng = random.Random(seed)
    if task == "ner":
        return rng.sample(cands, k)
    by_label: dict[int, list[Mapping[str, Any]]] = {}
    for t in cands:
        by_label.setdefault(label_index(t["label"], names), []).append(t)
    order = sorted(by_label)
    rng.shuffle(order)
    pools = {lab: rng.sample(by_label[lab], len(by_label[lab])) for lab in order}
    shots: list[Mapping[str, Any]] = []
    while len(shots) < k:
        for lab in order:
            if pools[lab] and len(shots) < k:
                shots.append(pools[lab].pop())
    rng.shuffle(shots)
    return shots


def build_prompts(
    task: str,
    items: Sequence[Mapping[str, Any]],
    train: Sequence[Mapping[str, Any]],
    template: str | PromptTemplate = "default",
    k: int = 0,
    seed: int = 0,
    label_names: Sequence[str] | None = None,
) -> list[Prompt]:
    """One Prompt per item: `template` (a name in params/prompts.yaml, or a PromptTemplate) with k shots.

    `label_names`: tc default SIB_LABELS, sa SENTIMENT_LABELS; ner always lists PER, ORG, LOC."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if isinstance(template, str):
        known = load_templates()[task]
        if template not in known:
            raise ValueError(
                f"no {task} template {template!r} in params/prompts.yaml (known: {', '.join(known)})"
            )
        tpl = known[template]
    else:
        tpl = template
    if k > 0 and tpl.zero_shot_only:
        raise ValueError(
            f"template {template!r} is zero-shot only (its parser reads the first 'Answer:'); got k={k}"
        )
    _check_items(task, items, "items")
    _check_items(task, train if k > 0 else (), "train")
    names = tuple(ENTITY_TYPES if task == "ner" else (label_names or DEFAULT_LABELS[task]))
    shown = [n if task == "ner" else n.lower() for n in names]
    context = {
        "categories": ", ".join(shown),
        "choices": "\n".join(f"{i}. {n}" for i, n in enumerate(shown, 1)),
    }
    instruction = tpl.instruction.format(**context)
    system = tpl.system.format(**context) if tpl.system is not None else None
    shots = [
        tpl.shot.format(text=_render_text(task, s), answer=_render_answer(task, s, names, tpl.numbered))
        for s in sample_shots(task, items, train, k, seed, names)
    ]
    prompts = []
    for item in items:
        text = _render_text(task, item)
        raw = tpl.separator.join([instruction, *shots, tpl.query.format(text=text)])
        user = tpl.separator.join([instruction, *shots, (tpl.chat_query or tpl.query).format(text=text)])
        messages = ({"role": "system", "content": system},) if system is not None else ()
        messages += ({"role": "user", "content": user},)
        prompts.append(Prompt(item_id=str(item["id"]), text=raw, messages=messages))
    return prompts


def prompt_key(model: str, prompt: Prompt, generation: Mapping[str, Any]) -> str:
    """Cache key: sha256 of a canonical JSON of the model name, the prompt (text and messages) and the
    generation settings (the item id is not part of it: equal prompts share an answer)."""
    payload = {
        "model": model,
        "text": prompt.text,
        "messages": [dict(m) for m in prompt.messages],
        "generation": to_dict(dict(generation)),
    }
    canon = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
