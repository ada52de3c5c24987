"""Tests of lrl_utils.evaluation.pppl: batched pseudo-perplexity against the paper's per-token loop."""

from __future__ import annotations

import math
import re
from pathlib import Path

import adapters
import pytest
import torch
from tokenizers import BertWordPieceTokenizer, SentencePieceUnigramTokenizer, processors
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    PreTrainedModel,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizerFast,
)

from lrl_utils.adapters.heads import head_path, set_head_path
from lrl_utils.evaluation.pppl import (
    _batches,
    devtest_sentences,
    encode_sentence,
    pseudo_perplexity,
    pseudo_perplexity_reference,
    thai_long_words,
)

CORPUS = [
    f"the {animal} {verb} near the {place} in {season}"
    for animal in ("cat", "dog", "fox", "owl")
    for verb in ("sleeps", "eats", "runs")
    for place in ("river", "house", "forest")
    for season in ("winter", "spring")
]
SENTENCES = [
    "the cat sleeps",
    "the owl runs near the forest in spring and the dog eats near the house",
    "a fox",
    "",
    "the dog eats near the river in winter",
    "the fox runs near the river in winter and the cat sleeps near the forest in spring and the owl eats",
]
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def bert_tokenizer(directory: Path) -> BertTokenizerFast:
    raw = BertWordPieceTokenizer(lowercase=True, strip_accents=False)
    raw.train_from_iterator(
        CORPUS, vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    raw._tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tok = BertTokenizerFast(tokenizer_object=raw._tokenizer, do_lower_case=True, strip_accents=False)
    tok.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def xlmr_tokenizer(directory: Path) -> XLMRobertaTokenizerFast:
    raw = SentencePieceUnigramTokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw.train_from_iterator(CORPUS, vocab_size=120, special_tokens=specials, unk_token="<unk>")
    raw._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok = XLMRobertaTokenizerFast(
        tokenizer_object=raw._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    tok.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def tiny_model(arch: str, tokenizer, adapter: str | None, path: str = "paper_compat") -> PreTrainedModel:
    """A random tiny MLM in float64, optionally with an active adapter whose weights clearly matter, its LM head
    following head path `path` (`inverse`: the invertible adapter's inverse before the output projection)."""
    torch.manual_seed(0)
    if arch == "bert":
        model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **TINY))
    else:
        config = XLMRobertaConfig(
            vocab_size=len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2, **TINY
        )
        model = XLMRobertaForMaskedLM(config)
    if adapter is not None:
        adapters.init(model)
        model.add_adapter("mlm", config=adapter)
        model.set_active_adapters("mlm")
        perturbed = 0
        with torch.no_grad():
            for name, param in model.named_parameters():
                if ".mlm." in name:
                    param.add_(0.3 * torch.randn_like(param))
                    perturbed += 1
        assert perturbed > 0
        set_head_path(model, path)
    assert head_path(model) == path
    return model.double().eval()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["bert", "xlmr"])
def arch_and_tokenizer(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"tok-{request.param}")
    make = bert_tokenizer if request.param == "bert" else xlmr_tokenizer
    return request.param, make(directory)


def assert_same_scores(got: dict, want: dict, tol: float = 1e-6) -> None:
    assert got["n_sentences"] == want["n_sentences"]
    assert got["n_tokens"] == want["n_tokens"]
    assert got["pppl"] == pytest.approx(want["pppl"], rel=tol, abs=tol)
    assert got["pppl_token_weighted"] == pytest.approx(want["pppl_token_weighted"], rel=tol, abs=tol)
    for g, w in zip(got["per_sentence"], want["per_sentence"], strict=True):
        assert g["text"] == w["text"] and g["n_tokens"] == w["n_tokens"]
        assert g["pppl"] == pytest.approx(w["pppl"], rel=tol, abs=tol)


REFERENCE_BUDGET = 40  # rows x padded length: the longest sentence's copies span several batches


@pytest.mark.parametrize(
    ("adapter", "path"),
    [
        (None, "paper_compat"),
        ("seq_bn", "paper_compat"),
        ("seq_bn_inv", "paper_compat"),
        ("seq_bn_inv", "inverse"),
        ("lora", "paper_compat"),
    ],
)
def test_batched_equals_reference(arch_and_tokenizer, adapter, path):
    """The batched path equals the paper's per-token loop to 1e-6 in float64 (special tokens scored, sentences of
    different lengths, one sentence's copies spread over several batches, several sentences in one batch)."""
    arch, tokenizer = arch_and_tokenizer
    lengths = [len(encode_sentence(tokenizer, s)) for s in SENTENCES]
    batches = list(_batches(lengths, REFERENCE_BUDGET))
    longest = lengths.index(max(lengths))
    assert len(set(lengths)) >= 4 and min(lengths) == 2  # the empty sentence: [CLS] [SEP] only
    assert sum(any(idx == longest for idx, _ in b) for b in batches) >= 3
    assert any(len({idx for idx, _ in b}) >= 2 for b in batches)

    model = tiny_model(arch, tokenizer, adapter, path)
    want = pseudo_perplexity_reference(model, tokenizer, SENTENCES)
    got = pseudo_perplexity(model, tokenizer, SENTENCES, max_batch_tokens=REFERENCE_BUDGET, progress=False)
    assert got["dtype"] == want["dtype"] == "float64" and got["precision"] == "no"
    assert got["head_path"] == want["head_path"] == (path if adapter else None)
    assert_same_scores(got, want, tol=1e-6)
    assert all(math.isfinite(row["pppl"]) and row["pppl"] > 1.0 for row in got["per_sentence"])


def test_both_head_paths_score_with_the_inverse_and_it_matters(arch_and_tokenizer, monkeypatch):
    """With `seq_bn_inv` both head paths score with the inverse before the output projection (`paper_compat`: as the
    original's `AutoAdapterModel` did, although it trained without it): the same weights give the same scores, and
    without the inverse they change (so the cases above test something)."""
    arch, tokenizer = arch_and_tokenizer
    models = {path: tiny_model(arch, tokenizer, "seq_bn_inv", path) for path in ("inverse", "paper_compat")}
    scores = {path: pseudo_perplexity(m, tokenizer, SENTENCES, progress=False) for path, m in models.items()}
    assert scores["inverse"]["pppl"] == scores["paper_compat"]["pppl"]
    assert [scores[p]["head_path"] for p in scores] == ["inverse", "paper_compat"]
    base = models["paper_compat"].base_model
    forward = base.invertible_adapters_forward
    monkeypatch.setattr(base, "invertible_adapters_forward", lambda h, rev=False: h if rev else forward(h))
    without = pseudo_perplexity(models["paper_compat"], tokenizer, SENTENCES, progress=False)["pppl"]
    assert abs(without / scores["paper_compat"]["pppl"] - 1) > 1e-3


def test_adapter_changes_scores_and_submodule_path_keeps_it(arch_and_tokenizer):
    """The encoder + head path sees the adapter: its logits equal the full forward pass, and differ without it."""
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, "seq_bn")
    ids = torch.tensor([tokenizer.encode(SENTENCES[1])])
    encoder = getattr(model, model.base_model_prefix)
    head = model.cls if arch == "bert" else model.lm_head
    with torch.inference_mode():
        full = model(input_ids=ids).logits
        split = head(encoder(input_ids=ids).last_hidden_state)
        with_adapter = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)["pppl"]
        model.set_active_adapters(None)
        without = model(input_ids=ids).logits
        without_adapter = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)["pppl"]
    assert torch.equal(full, split)
    assert (full - without).abs().max() > 1e-2
    assert abs(with_adapter - without_adapter) > 1e-3


def test_special_tokens_are_scored(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, None)
    result = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)
    plain = [len(tokenizer.encode(s, add_special_tokens=False)) for s in SENTENCES]
    assert [row["n_tokens"] for row in result["per_sentence"]] == [n + 2 for n in plain]
    assert result["n_tokens"] == sum(plain) + 2 * len(SENTENCES)
    assert result["per_sentence"][3]["n_tokens"] == 2  # the empty sentence: only the two specials


def test_batch_budget_does_not_change_results(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, "seq_bn")
    tiny_budget = pseudo_perplexity(model, tokenizer, SENTENCES, max_batch_tokens=1, progress=False)
    mid_budget = pseudo_perplexity(model, tokenizer, SENTENCES, max_batch_tokens=50, progress=False)
    one_batch = pseudo_perplexity(model, tokenizer, SENTENCES, max_batch_tokens=10**6, progress=False)
    assert_same_scores(tiny_budget, one_batch, tol=1e-12)
    assert_same_scores(mid_budget, one_batch, tol=1e-12)


def test_corpus_and_token_weighted_aggregation(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, None)
    result = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)
    rows = result["per_sentence"]
    assert [row["text"] for row in rows] == SENTENCES  # input order kept
    assert result["pppl"] == pytest.approx(sum(r["pppl"] for r in rows) / len(rows), rel=1e-12)
    total_nll = sum(r["n_tokens"] * math.log(r["pppl"]) for r in rows)
    assert result["pppl_token_weighted"] == pytest.approx(math.exp(total_nll / result["n_tokens"]), rel=1e-12)
    # The two aggregates differ in general (mean of exps vs exp of a weighted mean).
    assert result["pppl"] != pytest.approx(result["pppl_token_weighted"], rel=1e-6)


def test_unknown_token_share_is_reported(arch_and_tokenizer):
    """Text in a script the vocabulary lacks becomes unknown tokens; the result says how many, so a PPPL of
    such a language is not taken at face value."""
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, None)
    assert pseudo_perplexity(model, tokenizer, CORPUS[:3], progress=False)["unk_share"] == 0.0
    foreign = ["the cat ሰላም", "ሰላም ዓለም"]  # Ethiopic: none of it in the corpus
    result = pseudo_perplexity(model, tokenizer, foreign, progress=False)
    ids = [tokenizer.encode(s) for s in foreign]
    n_unk = sum(i.count(tokenizer.unk_token_id) for i in ids)
    assert n_unk >= 2 and result["unk_share"] == pytest.approx(n_unk / sum(map(len, ids)), rel=1e-12)


def test_finetune_results_say_how_much_of_the_test_text_is_unknown(tmp_path):
    from datasets import Dataset

    from lrl_utils.evaluation.finetune import unknown_share_of

    tokenizer = bert_tokenizer(tmp_path)  # saved there, as a model folder holds it
    known = Dataset.from_dict({"text": CORPUS[:4], "label": [0, 1, 0, 1]})
    assert unknown_share_of(str(tmp_path), known) == 0.0
    foreign = Dataset.from_dict({"tokens": [["the", "cat", "ሰላም"], ["ሰላም"]], "ner_tags": [[0, 0, 1], [1]]})
    n_unk = 2  # one unknown word each, among [CLS] the cat ሰላም [SEP] and [CLS] ሰላም [SEP]
    assert (
        tokenizer.convert_ids_to_tokens(tokenizer(["ሰላም"], is_split_into_words=True)["input_ids"])[1]
        == "[UNK]"
    )
    assert unknown_share_of(str(tmp_path), foreign) == pytest.approx(n_unk / 8, rel=1e-12)


def test_truncation_and_training_mode_restored(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, None).train()
    result = pseudo_perplexity(model, tokenizer, SENTENCES, max_length=6, progress=False)
    assert max(row["n_tokens"] for row in result["per_sentence"]) == 6
    assert model.training
    reference = pseudo_perplexity_reference(model, tokenizer, SENTENCES, max_length=6)
    assert_same_scores(result, reference)


def test_a_sentence_longer_than_the_models_positions_is_cut_where_they_end(arch_and_tokenizer):
    from lrl_utils.evaluation.pppl import usable_length

    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, None)
    limit = usable_length(model, 10**6)
    offset = model.config.pad_token_id + 1 if arch == "xlmr" else 0
    assert limit == model.config.max_position_embeddings - offset
    long = " ".join(SENTENCES * 200)  # far more tokens than the model has positions
    result = pseudo_perplexity(model, tokenizer, [long, SENTENCES[0]], max_length=10**6, progress=False)
    assert result["per_sentence"][0]["n_tokens"] == limit and math.isfinite(result["pppl"])
    assert_same_scores(
        result, pseudo_perplexity_reference(model, tokenizer, [long, SENTENCES[0]], max_length=10**6)
    )


def test_float32_close_to_float64(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, "seq_bn")
    want = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)
    got = pseudo_perplexity(model.float(), tokenizer, SENTENCES, progress=False)
    assert got["pppl"] == pytest.approx(want["pppl"], rel=1e-4)


def test_thai_rule():
    assert thai_long_words("  a  bb   c ") == "a bb c"
    long_word = "ก" * 250
    out = thai_long_words(f"x {long_word} y")
    assert out.split() == ["x", "ก" * 99, "ก" * 99, "ก" * 52, "y"]
    assert thai_long_words("ก" * 99) == "ก" * 99
    assert thai_long_words("abcdefg", max_len=3) == "abc def g"
    assert thai_long_words("") == ""
    with pytest.raises(ValueError):
        thai_long_words("abc", max_len=0)


def test_pppl_stage_applies_the_thai_rule_to_tha_codes_only():
    long_word = "ก" * 250
    devtest = [f"x {long_word} y", "ข  ค", "z"]
    thai = devtest_sentences(devtest, "tha_Thai")
    assert thai == [thai_long_words(s) for s in devtest]
    assert thai[0].split() == ["x", "ก" * 99, "ก" * 99, "ก" * 52, "y"] and thai[1] == "ข ค"
    assert devtest_sentences(devtest, "tha_Thai", max_sentences=2) == thai[:2]
    assert devtest_sentences(devtest, "tha_Thai", max_sentences=0) == thai  # 0 / None: all sentences
    # any other language keeps its sentences as they are (a 250-character "word" included)
    for code in ("mlt_Latn", "lao_Laoo", "tha", "ltha_Thai"):
        assert devtest_sentences(devtest, code) == devtest
    assert devtest_sentences(devtest, "mlt_Latn", max_sentences=1) == devtest[:1]
    # ... and this is the function the pppl stage scores the FLORES devtest sentences through
    stage = (
        Path(__file__).resolve().parent.parent / "lrl_utils" / "evaluation" / "pppl_stage.py"
    ).read_text()
    call = r"return devtest_sentences\(devtest\[\"sentence\"\], spec\.flores_code,"
    assert re.search(call, stage) and "thai_long_words" not in stage  # no second rule there


def test_bf16_autocast_on_cpu_close_to_fp32(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    model = tiny_model(arch, tokenizer, "seq_bn").float()
    fp32 = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False, precision="no")
    auto = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False)  # "auto" is fp32 on a CPU
    bf16 = pseudo_perplexity(model, tokenizer, SENTENCES, progress=False, precision="bf16")
    assert fp32["precision"] == auto["precision"] == "no" and bf16["precision"] == "bf16"
    assert fp32["dtype"] == bf16["dtype"] == "float32"
    assert auto["per_sentence"] == fp32["per_sentence"]
    assert bf16["pppl"] != fp32["pppl"]  # autocast did run in bf16
    assert bf16["pppl"] == pytest.approx(fp32["pppl"], rel=0.05)
    for b, f in zip(bf16["per_sentence"], fp32["per_sentence"], strict=True):
        assert b["n_tokens"] == f["n_tokens"] and b["pppl"] == pytest.approx(f["pppl"], rel=0.05)


def test_unknown_precision_is_refused(arch_and_tokenizer):
    arch, tokenizer = arch_and_tokenizer
    with pytest.raises(ValueError, match="precision"):
        pseudo_perplexity(tiny_model(arch, tokenizer, None), tokenizer, SENTENCES, precision="fp8")
