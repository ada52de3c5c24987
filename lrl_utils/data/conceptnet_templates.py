"""The paper's 33 ConceptNet relations as English predicates (SPEC §2), and one edge turned into a sentence."""

from __future__ import annotations

from operator import itemgetter

from lrl_utils.data.sources import DataSourceError

# The paper's 33 relations and their English predicates (cn_to_nl.py; paper Table 4; SPEC §2).
CONCEPTNET_TEMPLATES: dict[str, str] = {
    "Antonym": "is the opposite of",
    "DerivedFrom": "is derived from",
    "EtymologicallyDerivedFrom": "is etymologically derived from",
    "EtymologicallyRelatedTo": "is etymologically related to",
    "FormOf": "is a form of",
    "PartOf": "is a part of",
    "HasA": "belongs to",
    "UsedFor": "is used for",
    "AtLocation": "is a typical location for",
    "Causes": "causes",
    "CausesDesire": "makes someone want",
    "MadeOf": "is made of",
    "ReceivesAction": "receives action of",
    "HasSubevent": "is a subevent of",
    "HasFirstSubevent": "is an event that begins with subevent",
    "HasLastSubevent": "is an event that concludes with subevent",
    "HasPrerequisite": "has prerequisite of",
    "HasProperty": "can be described as",
    "MotivatedByGoal": "is a step toward accomplishing the goal",
    "ObstructedBy": "is an obstacle in the way of",
    "Desires": "is a conscious entity that typically wants",
    "CreatedBy": "is a process or agent that creates",
    "CapableOf": "is capable of",
    "HasContext": "is a word used in the context of",
    "IsA": "is a type of",
    "RelatedTo": "is related to",
    "SimilarTo": "is similar to",
    "Synonym": "is a synonym of",
    "SymbolOf": "symbolically represents",
    "DefinedAs": "is a more explanatory version of",
    "DistinctFrom": "is distinct from",
    "MannerOf": "is a specific way to do",
    "LocatedNear": "is typically found near",
}
DROP_REASONS = ("external_url", "unknown_relation", "same_surface", "malformed")
_PREDICATES = {relation.encode(): predicate.encode() for relation, predicate in CONCEPTNET_TEMPLATES.items()}
_MALFORMED = b"malformed"
_LANGUAGE_RELATION = itemgetter(1, 0)


def surface_form(uri: str, paper_compat: bool = False) -> str:
    """The words of a ConceptNet node URI, `_` replaced by a space.

    Fixed behaviour: the concept word, segment 3 of `/c/<lang>/<word>[/<pos>[/...]]`. With `paper_compat`,
    the original's last segment, so `/c/mt/kelma/n` gives `n` (the bug of cn_to_nl.py, SPEC §2).
    """
    parts = uri.split("/")
    word = parts[-1] if paper_compat else parts[3] if len(parts) >= 4 and parts[1] == "c" else ""
    if not word:
        raise DataSourceError(f"no surface form in ConceptNet URI {uri!r}")
    return word.replace("_", " ")


def _verbalise(
    relation_uri: bytes, rest: bytes, end: bytes, paper_compat: bool
) -> tuple[bytes, bytes | None]:
    """(relation, sentence) for a kept edge, else (drop reason, None); `rest`: the start URI after `/c/<lang>/`."""
    if end[:4] == b"http":
        return b"external_url", None
    relation = relation_uri.rpartition(b"/")[2]
    predicate = _PREDICATES.get(relation)
    if predicate is None:
        return b"unknown_relation", None
    if paper_compat:  # the original's last URI segment
        subject, obj = rest.rpartition(b"/")[2], end.rpartition(b"/")[2]
    else:  # the concept word: /c/<lang>/<word>[/<pos>...]
        subject, parts = rest.partition(b"/")[0], end.split(b"/", 4)
        obj = parts[3] if len(parts) >= 4 and not parts[0] and parts[1] == b"c" else b""
    if not subject or not obj:
        return _MALFORMED, None
    subject, obj = subject.replace(b"_", b" "), obj.replace(b"_", b" ")
    if subject == obj:
        return b"same_surface", None
    return relation, b"%s %s %s." % (subject, predicate, obj)
