"""LLM baselines (SPEC §6): prompt templates and k-shot prompts, answer parsers, scores, the paper's scorings."""

from __future__ import annotations

import json
import random

import pytest
from seqeval.metrics import f1_score as seq_f1
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score

from lrl_utils.config.params import ParamError
from lrl_utils.data.flores_sib import SIB_LABELS
from lrl_utils.data.wikiann import NER_TAGS
from lrl_utils.llm.parsing import Parsed, parse_ner, parse_sa, parse_tc, parse_tc_deepseek
from lrl_utils.llm.prompts import (
    Prompt,
    build_prompts,
    entities_from_tags,
    load_templates,
    prompt_key,
    sample_shots,
)
from lrl_utils.llm.scoring import emma500_macro_f1, gpt_substring_score, score

SPORTS, TRAVEL, POLITICS, HEALTH, SCITECH = (SIB_LABELS.index(x) for x in ("sports", "travel", "politics", "health", "science/technology"))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Topic and sentiment parsers


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("Sports", "sports"),
        ("  sports.  ", "sports"),
        ("SPORTS!", "sports"),
        ("Answer: **Science/Technology**", "science/technology"),
        ("`politics`", "politics"),
        ('"Entertainment"', "entertainment"),
        ("“travel”", "travel"),
        ("Category: Geography.", "geography"),
        ("The answer is: health", "health"),
        ("### Travel", "travel"),
        ("**Category:** sports\n\nThe text describes a match; it is not about politics.", "sports"),
        ("Answer:\n\n**Sports**\n\nExplanation: no health or travel topic here.", "sports"),
        ("The text is about a football match, so the category is **sports**.", "sports"),
        ("sports\nText: Parliament passed the law. Answer: politics", "sports"),  # raw completion goes on
        ("<think>politics or sports? maybe travel</think>\n\nHealth", "health"),
        ("sci/tech", "science/technology"),
        ("Sci-Tech", "science/technology"),
        ("Science and Technology", "science/technology"),
        ("Technology.", "science/technology"),  # a compound part, only as the whole answer
        ("This article reports new findings, so I'd say science & technology.", "science/technology"),
        ("Sport", "sports"),
        ("This is health-related news.", "health"),
    ],
)
def test_parse_tc_valid(answer, label):
    got = parse_tc(answer, SIB_LABELS)
    assert got == Parsed(SIB_LABELS.index(label), True, "ok")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty answer"),
        ("   \n ", "empty answer"),
        (None, "empty answer"),
        ("<think>The text mentions a match, so sports", "unfinished reasoning"),
        ("It is about politics and sports.", "several labels"),
        ("It is not sports but politics", "several labels"),
        ("science/technology, travel, politics, sports, health, entertainment, geography", "several labels"),
        ("A travelogue of the sportsmanship of geographical societies", "no label"),  # labels inside words
        ("politically charged", "no label"),
        ("I cannot determine the category.", "no label"),
        ("The text mentions new technology.", "no label"),  # a compound part alone in prose: ignored
        ("4", "no label"),  # a bare number without a numbered prompt
    ],
)
def test_parse_tc_invalid(answer, reason):
    got = parse_tc(answer, SIB_LABELS)
    assert (got.value, got.valid, got.reason) == (None, False, reason)


def test_parse_tc_numbered_choices():
    assert parse_tc("4", SIB_LABELS, numbered=True).value == SPORTS  # 1-based, SIB order
    assert parse_tc("(4)", SIB_LABELS, numbered=True).value == SPORTS
    assert parse_tc("Answer: 4. sports", SIB_LABELS, numbered=True).value == SPORTS
    assert parse_tc("3. travel", SIB_LABELS, numbered=True).reason == "several labels"  # 3 is politics
    assert parse_tc("9", SIB_LABELS, numbered=True).reason == "no label"
    assert parse_tc("politics", SIB_LABELS, numbered=True).value == POLITICS


def test_parse_tc_compound_variants_only_when_unambiguous():
    labels = ("science/technology", "technology", "science/religion")
    assert parse_tc("technology", labels).value == 1  # the exact label wins over a part
    assert parse_tc("The topic is science/technology.", labels).value == 0  # "technology" inside: ignored
    assert parse_tc("Science", labels).reason == "no label"  # a part of two labels: ambiguous
    assert parse_tc("religion", labels).value == 2
    assert parse_tc("sci/rel", labels).value == 2


@pytest.mark.parametrize(
    ("answer", "value", "reason"),
    [
        ("Positive", 1, "ok"),
        ("NEGATIVE.", 0, "ok"),
        ("Sentiment: positive", 1, "ok"),
        ("The sentiment of this review is **negative**: the food was cold.", 0, "ok"),
        ("Favourable", 1, "ok"),
        ("unfavorable", 0, "ok"),
        ("pos", 1, "ok"),
        ("Positive\nText: Terrible service. Sentiment: negative", 1, "ok"),
        ("positive and negative", None, "several labels"),
        ("The review is positive, with no negative aspects", None, "several labels"),
        ("neutral", None, "no label"),
        ("positively surprising", None, "no label"),
        ("", None, "empty answer"),
    ],
)
def test_parse_sa(answer, value, reason):
    got = parse_sa(answer)
    assert (got.value, got.valid, got.reason) == (value, reason == "ok", reason)


# --------------------------------------------------------------------------------------------------
# The paper's DeepSeek prompt and parsing

DEEPSEEK_PROMPT = (
    "Classify the following text into one of these categories: science/technology, travel, politics, sports, "
    "health, entertainment, geography. Text: {text} Answer:"
)


def test_deepseek_template_is_verbatim():
    items = [{"id": "test-0", "text": "The match ended 2-1.", "label": SPORTS}]
    (prompt,) = build_prompts("tc", items, [], template="deepseek_tc")
    assert prompt.text == DEEPSEEK_PROMPT.format(text="The match ended 2-1.")
    assert prompt.messages == ({"role": "user", "content": prompt.text},)  # no system message
    with pytest.raises(ValueError, match="zero-shot only"):
        build_prompts("tc", items, [dict(items[0], id="train-0")], template="deepseek_tc", k=1)


@pytest.mark.parametrize(
    ("output", "value", "reason"),
    [
        (" Sports\n\nThe text is about politics and travel.", SPORTS, "ok"),  # first line only
        (" sports and politics", None, "several labels"),
        ("\n\nsports", SPORTS, "ok"),  # \s* after "Answer:" crosses the line break
        (" I think\npolitics", None, "no label"),  # (.*) stops at the end of the line
        (" travelling abroad", TRAVEL, "ok"),  # plain substring, no word boundary
        (" SPORTS", SPORTS, "ok"),
        (" science/technology", SCITECH, "ok"),
        ("", None, "no label"),
    ],
)
def test_parse_tc_deepseek(output, value, reason):
    decoded = DEEPSEEK_PROMPT.format(text="The match ended 2-1.") + output
    got = parse_tc_deepseek(decoded, SIB_LABELS)
    assert (got.value, got.valid, got.reason) == (value, reason == "ok", reason)
    assert parse_tc_deepseek("ANSWER: politics", SIB_LABELS).value == POLITICS  # re.IGNORECASE
    assert parse_tc_deepseek("no answer marker: sports", SIB_LABELS).reason == "no 'Answer:'"


def test_deepseek_f1_is_macro_over_valid_items_only():
    golds = ["sports", "travel", "politics", "sports", "sports", "geography"]
    outputs = [" sports", " travel", " sports or politics", " I don't know", " health", " travel"]
    parsed = [parse_tc_deepseek("Text: x Answer:" + o, SIB_LABELS) for o in outputs]
    result = score("tc", golds, parsed, SIB_LABELS)
    # the original script: string labels, invalid items dropped, labels=categories
    kept = [(g, SIB_LABELS[p.value]) for g, p in zip(golds, parsed, strict=True) if p.valid]
    expected = f1_score(
        [g for g, _ in kept], [p for _, p in kept], average="macro", labels=list(SIB_LABELS), zero_division=0
    )
    assert result["f1_paper_compat"] == pytest.approx(expected)
    assert result["n_valid"] == 4 and result["invalid_rate"] == pytest.approx(2 / 6)
    assert result["f1"] < result["f1_paper_compat"]  # the invalid sports item is a miss only in `f1`


# --------------------------------------------------------------------------------------------------
# NER parser

TOKENS = "Barack Obama ( politician ) visited New York , then New York again with U.N. staff .".split()


def tags_of(parsed):
    return " ".join(parsed.value)


def test_parse_ner_json_with_prose_fences_and_repeats():
    answer = (
        "Sure! Here are the entities:\n```json\n"
        '[{"text": "Barack Obama", "type": "PERSON"}, {"text": "New York", "type": "LOC"},\n'
        ' {"text": "New York", "type": "location"}, {"text": "U.N.", "type": "ORG"}]\n```\nHope this helps [1].'
    )
    got = parse_ner(answer, TOKENS)
    assert got.valid and got.reason == "ok" and got.dropped == 0
    assert tags_of(got) == "B-PER I-PER O O O O B-LOC I-LOC O O B-LOC I-LOC O O B-ORG O O"


def test_parse_ner_punctuation_case_and_python_literals():
    answer = "Entities: [{'text': 'obama (politician)', 'type': 'PER'}, ['New York', 'LOC'],]"
    got = parse_ner(answer, TOKENS)  # single quotes and a trailing comma, read as a Python literal
    assert got.valid and tags_of(got).startswith("O B-PER I-PER I-PER I-PER O B-LOC I-LOC O O O O")
    trailing = parse_ner('[{"text": "U.N.", "type": "B-ORG"},]', TOKENS)  # strict JSON but a trailing comma
    assert trailing.valid and trailing.value[14] == "B-ORG"


def test_parse_ner_exact_case_first():
    tokens = ["the", "apple", "of", "Apple", "and", "APPLE"]
    one = parse_ner('[{"text": "Apple", "type": "ORG"}]', tokens)
    assert one.value == ["O", "O", "O", "B-ORG", "O", "O"]
    got = parse_ner('[{"text": "Apple", "type": "ORG"}, {"text": "Apple", "type": "ORG"}]', tokens)
    # exact case first (position 3), then the first unused case-insensitive match (position 1)
    assert got.value == ["O", "B-ORG", "O", "B-ORG", "O", "O"]


def test_parse_ner_drops_and_counts():
    answer = json.dumps(
        [
            {"text": "Paris", "type": "LOC"},  # not in the text
            {"text": "Obama", "type": "PER"},
            {"text": "Obama", "type": "PER"},  # only one occurrence: the second is not found
            {"text": "staff", "type": "MISC"},  # another type
            {"type": "ORG"},  # malformed
            "New York",  # malformed
            {"text": "Bama", "type": "PER"},  # inside a token: not a token span
        ]
    )
    got = parse_ner(answer, TOKENS)
    assert got.valid and got.dropped == 6
    assert got.reason == "3 entities not in the text; 1 entity of another type; 2 entities malformed"
    assert got.value == ["O", "B-PER"] + ["O"] * (len(TOKENS) - 2)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty answer"),
        ("There are no entities of interest here.", "no JSON array of entities"),
        ('[{"text": "Barack Obama", "type": "PER"}', "no JSON array of entities"),  # broken, unclosed
        ('["Barack Obama", "New York"]', "no JSON array of entities"),  # strings, no types
        ("<think>Obama is a person", "unfinished reasoning"),
    ],
)
def test_parse_ner_invalid_is_all_o(answer, reason):
    got = parse_ner(answer, TOKENS)
    assert (got.valid, got.reason, got.value) == (False, reason, ["O"] * len(TOKENS))


def test_parse_ner_empty_list_and_gold_round_trip():
    assert parse_ner("[]", TOKENS) == Parsed(["O"] * len(TOKENS), True, "ok")
    rng = random.Random(3)
    words = ["Ana", "Nova", "Banka", "Zürich", "Orléans", "in", "met", "the", "U.S.", "(", ")", "and"]
    for _ in range(200):
        tokens = [rng.choice(words) for _ in range(rng.randint(1, 12))]
        tags, prev = [], "O"
        for _tok in tokens:
            t = rng.choice(NER_TAGS)
            if t.startswith("I-") and prev[2:] != t[2:]:
                t = "B-" + t[2:]  # proper IOB2
            tags.append(t)
            prev = t
        answer = json.dumps(entities_from_tags(tokens, tags), ensure_ascii=False)
        got = parse_ner(answer, tokens)
        # an entity may land on an earlier occurrence of its text (first unused span), so the entities are
        # compared as a multiset; none is lost
        assert got.valid and got.dropped == 0
        as_set = sorted(tuple(e.values()) for e in entities_from_tags(tokens, got.value))
        assert as_set == sorted(tuple(e.values()) for e in entities_from_tags(tokens, tags))


# --------------------------------------------------------------------------------------------------
# Scores


def test_score_tc_against_sklearn():
    rng = random.Random(0)
    answers = [*SIB_LABELS, "politics and sports", "", "no idea"]
    golds = [rng.randrange(len(SIB_LABELS)) for _ in range(300)]
    parsed = [parse_tc(rng.choice(answers) if rng.random() < 0.6 else SIB_LABELS[g]) for g in golds]
    result = score("tc", golds, parsed, SIB_LABELS)
    names = [SIB_LABELS[g] for g in golds]
    preds = [SIB_LABELS[p.value] if p.valid else "<invalid>" for p in parsed]
    assert result["f1"] == pytest.approx(f1_score(names, preds, labels=list(SIB_LABELS), average="macro"))
    assert result["accuracy"] == pytest.approx(sum(a == b for a, b in zip(names, preds, strict=True)) / 300)
    valid = [(a, b) for a, b in zip(names, preds, strict=True) if b != "<invalid>"]
    assert result["n_valid"] == len(valid) < 300 and result["n"] == 300
    assert result["invalid_rate"] == pytest.approx(1 - len(valid) / 300)
    compat = f1_score(*zip(*valid, strict=True), labels=list(SIB_LABELS), average="macro")
    assert result["f1_paper_compat"] == pytest.approx(compat)


def test_score_sa_invalid_counts_as_wrong():
    parsed = [parse_sa(a) for a in ("negative", "positive", "neutral", "positive and negative")]
    result = score("sa", ["negative", "positive", "negative", "positive"], parsed)
    assert result["f1_paper_compat"] == 1.0
    assert result["f1"] == pytest.approx(2 / 3) and result["accuracy"] == 0.5
    assert result["invalid_rate"] == 0.5
    none_valid = score("sa", [0, 1], [parse_sa(""), parse_sa("?")])
    assert none_valid["f1_paper_compat"] == 0.0 and none_valid["f1"] == 0.0
    with pytest.raises(ValueError, match="golds"):
        score("sa", [0], [])


def test_score_ner_against_seqeval():
    sents = [
        (["Obama", "visited", "New", "York"], [1, 0, 5, 6]),
        (["The", "U.N.", "met"], [0, 3, 0]),
        (["Ali", "and", "Vera", "Smith"], [1, 0, 1, 2]),
        (["Rome"], [5]),
    ]
    answers = [
        '[{"text": "Obama", "type": "PER"}, {"text": "New York", "type": "ORG"}]',
        "Sorry, I cannot help.",  # invalid: all O, gold U.N. missed
        '```json\n[{"text": "Ali", "type": "PER"}, {"text": "Vera Smith", "type": "PER"}]\n```',
        '[{"text": "Rome", "type": "LOC"}, {"text": "Milan", "type": "LOC"}]',
    ]
    parsed = [parse_ner(a, t) for a, (t, _) in zip(answers, sents, strict=True)]
    result = score("ner", [g for _, g in sents], parsed)
    gold = [[NER_TAGS[i] for i in g] for _, g in sents]
    pred = [p.value for p in parsed]
    assert pred[1] == ["O", "O", "O"]
    assert result["f1"] == pytest.approx(seq_f1(gold, pred))
    assert result["f1"] == pytest.approx(2 * 4 / (5 + 6))  # 4 correct of 5 predicted and 6 gold entities
    assert result["f1_strict"] == pytest.approx(seq_f1(gold, pred, mode="strict", scheme=IOB2))
    valid = [i for i, p in enumerate(parsed) if p.valid]
    assert result["f1_paper_compat"] == pytest.approx(
        seq_f1([gold[i] for i in valid], [pred[i] for i in valid])
    )
    assert result["f1_paper_compat"] > result["f1"]
    assert (result["n"], result["n_valid"], result["invalid_rate"], result["dropped_entities"]) == (
        4,
        3,
        0.25,
        1,
    )


# --------------------------------------------------------------------------------------------------
# The paper's GPT-3.5/4 and EMMA-500 scorings


def test_gpt_substring_score_is_a_transform_of_accuracy():
    rng = random.Random(1)
    labels = [lab for lab in SIB_LABELS if "/" not in lab]
    golds = [rng.choice(labels) for _ in range(204)]
    responses = [
        rng.choice([g.upper(), f"The category is {g}.", rng.choice(labels), f"{g}, {rng.choice(labels)}"])
        for g in golds
    ]
    result = gpt_substring_score(responses, golds)
    acc = sum(g in r.lower() and "," not in r for g, r in zip(golds, responses, strict=True)) / 204
    assert result["accuracy"] == pytest.approx(acc) and 0.2 < acc < 0.8
    assert result["f1"] == pytest.approx(2 * acc / (1 + acc))
    # bod_Tibt in SPEC §6: F1 0.0194 is acc 2/204
    two = gpt_substring_score(["sports"] * 2 + ["x"] * 202, ["sports"] * 204)
    assert round(two["f1"], 4) == 0.0194


def test_gpt_substring_score_flaws():
    scitech = gpt_substring_score(["science/technology", "Science/Technology."], ["science/technology"] * 2)
    assert scitech == {"f1": 0.0, "accuracy": 0.0, "n": 2}
    assert gpt_substring_score(["sports, politics"], ["sports"])["accuracy"] == 0.0
    assert gpt_substring_score(["sportsman"], [SPORTS])["accuracy"] == 1.0  # substring, gold as an index
    assert gpt_substring_score([float("nan")], ["sports"])["accuracy"] == 0.0


def test_emma500_macro_f1_on_raw_strings():
    # classes: a (F1 1), b (F1 0), "zzz" (a wrong prediction string: a class of its own, F1 0)
    assert emma500_macro_f1(["a", "b"], ["a", "zzz"]) == pytest.approx(1 / 3)


# --------------------------------------------------------------------------------------------------
# Prompts and shots


def tc_train(n=70):
    return [{"id": f"train-{i}", "text": f"sentence {i}", "label": i % 7} for i in range(n)]


def shot_texts(prompt: Prompt, n_shots: int) -> list[str]:
    blocks = prompt.text.split("\n\n")
    return [b.split("\n")[0] for b in blocks[1 : 1 + n_shots]]


def test_shots_are_deterministic_shared_and_never_query_items():
    train = tc_train()
    items = [dict(train[i]) for i in range(0, 70, 9)]  # query items that are also train items
    items.append({"id": "test-x", "text": "sentence 5", "label": 5})  # a duplicate text under another id
    a = build_prompts("tc", items, train, k=5, seed=3)
    b = build_prompts("tc", items, train, k=5, seed=3)
    c = build_prompts("tc", items, train, k=5, seed=4)
    assert a == b and a != c
    shots = shot_texts(a[0], 5)
    assert all(shot_texts(p, 5) == shots for p in a)  # the same shots for every item
    for seed in range(40):
        drawn = sample_shots("tc", items, train, k=20, seed=seed)
        assert not {s["id"] for s in drawn} & {it["id"] for it in items}
        assert "sentence 5" not in {s["text"] for s in drawn}
    same_id = [{"id": "train-3", "text": "another sentence", "label": 0}]
    for seed in range(40):
        assert "train-3" not in {s["id"] for s in sample_shots("tc", same_id, train, k=60, seed=seed)}
    with pytest.raises(ValueError, match="k=70"):
        sample_shots("tc", items, train, k=70)


@pytest.mark.parametrize("k", [3, 7, 10, 16])
def test_shots_are_balanced_over_labels(k):
    train = tc_train() + [{"id": "extra", "text": "lone", "label": 0}]
    for seed in range(10):
        labels = [s["label"] for s in sample_shots("tc", [], train, k=k, seed=seed)]
        counts = [labels.count(lab) for lab in range(7)]
        assert len(labels) == k and max(counts) - min(counts) <= 1


def test_shot_order_is_shuffled():
    # without the final shuffle the first 7 of 14 shots would always be one per label (round-robin)
    firsts = [
        {s["label"] for s in sample_shots("tc", [], tc_train(), k=14, seed=seed)[:7]} for seed in range(20)
    ]
    assert any(len(labels) < 7 for labels in firsts)


def test_prompt_forms_and_numbered_and_ner_shots():
    train = tc_train()
    (p,) = build_prompts("tc", [{"id": "q", "text": "The match ended 2-1.", "label": "sports"}], train, k=2)
    assert p.text.endswith("Text: The match ended 2-1.\nCategory:")
    assert [m["role"] for m in p.messages] == ["system", "user"]
    assert p.messages[1]["content"].endswith("Text: The match ended 2-1.")
    assert p.text.count("Category: ") == 2
    (n,) = build_prompts("tc", [{"id": "q", "text": "x", "label": 0}], train, template="numbered", k=1)
    assert "\n1. science/technology\n2. travel\n" in n.text and "Category: " in n.text
    assert n.text.split("Category: ")[1][0].isdigit()  # numbered shots answer with the number
    ner_train = [
        {
            "id": "tr0",
            "tokens": ["New", "York", "Times", "said"],
            "ner_tags": ["B-ORG", "I-ORG", "I-ORG", "O"],
        },
        {"id": "tr1", "tokens": ["Ali", "in", "Rome"], "ner_tags": [1, 0, 5]},
    ]
    (q,) = build_prompts("ner", [{"id": "t0", "tokens": ["Obama", "visited", "Paris"], "ner_tags": [1, 0, 5]}], ner_train, k=2)  # fmt: skip
    assert '[{"text": "New York Times", "type": "ORG"}]' in q.text
    assert '[{"text": "Ali", "type": "PER"}, {"text": "Rome", "type": "LOC"}]' in q.text
    assert (
        q.text.endswith("Sentence: Obama visited Paris\nEntities:")
        and "type is one of PER, ORG, LOC" in q.text
    )


def test_entities_from_tags_reads_stray_i_as_a_start():
    tokens = ["a", "b", "c", "d"]
    assert entities_from_tags(tokens, ["I-PER", "I-PER", "I-LOC", "O"]) == [
        {"text": "a b", "type": "PER"},
        {"text": "c", "type": "LOC"},
    ]


def test_prompt_key():
    p = Prompt("a", "text", ({"role": "user", "content": "text"},))
    key = prompt_key("m", p, {"max_new_tokens": 100, "temperature": 0.0})
    assert len(key) == 64 and key == prompt_key("m", p, {"temperature": 0.0, "max_new_tokens": 100})
    assert key == prompt_key(
        "m", Prompt("b", p.text, p.messages), {"max_new_tokens": 100, "temperature": 0.0}
    )
    others = [
        prompt_key("m2", p, {"max_new_tokens": 100, "temperature": 0.0}),
        prompt_key("m", Prompt("a", "text2", p.messages), {"max_new_tokens": 100, "temperature": 0.0}),
        prompt_key("m", Prompt("a", "text", ()), {"max_new_tokens": 100, "temperature": 0.0}),
        prompt_key("m", p, {"max_new_tokens": 101, "temperature": 0.0}),
    ]
    assert len({key, *others}) == 5


# --------------------------------------------------------------------------------------------------
# Template validation


def test_shipped_templates_validate():
    templates = load_templates()
    assert set(templates) == {"tc", "sa", "ner"} and all("default" in t for t in templates.values())
    assert templates["tc"]["deepseek_tc"].zero_shot_only


DEFAULT = 'instruction: "Pick: {categories}."\n    shot: "T: {text} A: {answer}"\n    query: "T: {text} A:"'


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            f"tc:\n  default:\n    {DEFAULT}\n    instrucion: x\nsa: {{}}\nner: {{}}",
            "tc.default.instrucion",
            "did you mean",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text} {answer}"\n    query: "{txt}"',
            "tc.default.query",
            "unknown placeholder {txt}",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text}"\n    query: "{text}"',
            "tc.default.shot",
            "must contain {answer}",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: "[{\\"text\\": 1}]"\n    shot: "{text}{answer}"\n    query: "{text}"',
            "tc.default.instruction",
            "double literal braces",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text}{answer}"\n    query: "{text}"\n    separator: 3',
            "tc.default.separator",
            "expected str",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text}{answer}"\n    query: "{text}"\n    numbered: true',
            "tc.default.numbered",
            "{choices}",
        ),  # fmt: skip
        (
            f"tc:\n  default:\n    {DEFAULT}\nsa:\n  other:\n    {DEFAULT}\nner:\n  default:\n    {DEFAULT}",
            "sa.default",
            "missing",
        ),  # fmt: skip
        (f"tc:\n  default:\n    {DEFAULT}\nsa:\n  default:\n    {DEFAULT}", "ner", "expected a mapping"),
        (f"qa:\n  default:\n    {DEFAULT}", "qa", "unknown key"),
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text}{answer}"\n    query: "{text:d}"',
            "tc.default.query",
            "a placeholder is a bare name, got {text:d}",
        ),  # fmt: skip
        (
            'tc:\n  default:\n    instruction: x\n    shot: "{text!r}{answer}"\n    query: "{text}"',
            "tc.default.shot",
            "a placeholder is a bare name, got {text!r}",
        ),  # fmt: skip
    ],
)
def test_template_errors_are_one_line_with_file_and_key(project, text, key, words):
    load_templates()  # the copied shipped file is valid
    project.edit_yaml("params/prompts.yaml", text)
    with pytest.raises(ParamError) as err:
        load_templates()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("params/prompts.yaml: ")
    assert f"`{key}" in msg and words in msg


def test_template_yaml_syntax_error(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text("tc: [unclosed\n", encoding="utf-8")
    with pytest.raises(ParamError, match="invalid YAML") as err:
        load_templates(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_ner_answers_match_the_text_in_either_unicode_form() -> None:
    decomposed = ["Zu\u0308rich", "is", "big"]  # the text with a combining diaeresis, the answer composed
    parsed = parse_ner('[{"text": "Z\u00fcrich", "type": "LOC"}]', decomposed)
    assert parsed.value == ["B-LOC", "O", "O"] and parsed.dropped == 0
    composed = ["Z\u00fcrich", "is", "big"]
    assert parse_ner('[{"text": "Zu\u0308rich", "type": "LOC"}]', composed).value == ["B-LOC", "O", "O"]
