"""The demo's tiny mBERT / XLM-R / Llama: tokenizer training, model construction, pre-training.

The paper adapts two real base models (`google-bert/bert-base-multilingual-cased`, `FacebookAI/xlm-roberta-base`).
The offline demo cannot download them, so it builds miniature stand-ins with the same *architecture classes* and
the same *tokenizer conventions*, pre-trains them on the seen demo languages, and then runs exactly the same
adapter code on them as on the real models:

- "bert": a cased WordPiece tokenizer (no lower-casing, accents kept, like mBERT-cased) with
  `[PAD] [UNK] [CLS] [SEP] [MASK]` and `[CLS] X [SEP]`, wrapped in `BertTokenizerFast`; `BertForMaskedLM`.
- "xlm-roberta": a Unigram tokenizer with SentencePiece's Metaspace pre-tokenisation ("▁" marks a word start), the
  special tokens `<s> <pad> </s> <unk> <mask>` at ids 0-4 (as in XLM-R: bos 0, pad 1, eos 2, unk 3) and
  `<s> X </s>`, wrapped in `XLMRobertaTokenizerFast`; `XLMRobertaForMaskedLM`.
- "llama" (the demo's stand-in for LLaMA-3-8B): the same Unigram tokenizer with `<s> X` (BOS only) and `<pad>` for
  batching, wrapped in `PreTrainedTokenizerFast`; `LlamaForCausalLM` with an untied output projection, pre-trained
  with causal LM.

Both tokenizers save with `save_pretrained` and reload with `AutoTokenizer.from_pretrained`, so a tiny model folder
looks like a hub checkpoint to the rest of the pipeline (`language_adapters.load_mlm_model`).

Typical use (seed first: model construction draws random weights from the global torch RNG)::

    tok = train_tokenizer("xlm-roberta", train_texts, vocab_size=2000)
    torch.manual_seed(0)
    model = build_tiny_model("xlm-roberta", TinyModel(), tok)
    history = pretrain(model, tok, train_texts, val_texts, TrainConfig(max_steps=2000, max_length=128))
    model.save_pretrained(out_dir); tok.save_pretrained(out_dir)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    DataCollatorForLanguageModeling,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizerFast,
)

from lrl_utils.config.params import TinyModel
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training.loop import train_lm

Architecture = Literal["bert", "xlm-roberta", "llama"]
ARCHITECTURES: tuple[str, ...] = ("bert", "xlm-roberta", "llama")

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
XLMR_SPECIAL_TOKENS = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "<mask>",
]  # ids 0..4; XLM-R's bos/pad/eos/unk are 0..3


def _bert_tokenizer(model: models.WordPiece) -> Tokenizer:
    """Cased mBERT's pipeline around `model`: clean control characters, split CJK characters, keep case and
    accents, split on whitespace and punctuation, "##" marks a word-inner piece."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


UNIGRAM_SCORE_DECIMALS = 6


def _canonical_unigram(tok: Tokenizer) -> models.Unigram:
    """The trained Unigram model made a function of its training text alone (the trainer's is not).

    Two steps of the trainer depend on the order of hash maps that Rust seeds afresh in every process:
    - EM runs over the words in hash-map order, so the floating-point sums, and with them the scores, differ in
      the last digits between two processes (enough to flip a segmentation whose alternatives score alike);
      rounding every score to `UNIGRAM_SCORE_DECIMALS` decimals (a score is a log-probability: 1e-6 is far below
      any difference that matters, far above the ~1e-15 noise) removes that;
    - the characters EM dropped are put back at the bottom of the vocabulary with the scores min, min + 1e-4,
      min + 2e-4, ... handed out in hash-set order; they get them here in the order of the characters.
    The pieces are then sorted by (score, piece), the special tokens kept at their ids.
    """
    state = json.loads(tok.to_str())["model"]
    special = len(XLMR_SPECIAL_TOKENS)
    head, pieces = state["vocab"][:special], state["vocab"][special:]
    if [piece for piece, _ in head] != XLMR_SPECIAL_TOKENS:
        raise RuntimeError(f"Unigram trainer: special tokens not at ids 0-{special - 1}: {head}")
    low, step = min(score for _, score in pieces), 1e-4  # the trainer's min_score_penalty_delta
    rungs = [i for i, (piece, score) in enumerate(pieces) if len(piece) == 1 and _on_ladder(score, low, step)]
    scores = sorted((pieces[i][1] for i in rungs), reverse=True)
    for i, piece, score in zip(rungs, sorted(pieces[i][0] for i in rungs), scores, strict=True):
        pieces[i] = [piece, score]
    vocab = [(piece, round(score, UNIGRAM_SCORE_DECIMALS)) for piece, score in head + pieces]
    vocab = vocab[:special] + sorted(vocab[special:], key=lambda item: (-item[1], item[0]))
    return models.Unigram(vocab, unk_id=XLMR_SPECIAL_TOKENS.index("<unk>"), byte_fallback=False)


def _on_ladder(score: float, low: float, step: float) -> bool:
    """Whether `score` is `low + k * step` for a whole k (to within float noise)."""
    k = (score - low) / step
    return abs(k - round(k)) < 1e-6


def train_tokenizer(
    architecture: Architecture,
    texts: Iterable[str],
    vocab_size: int,
    max_position: int = 130,
    alphabet: str = "",
) -> PreTrainedTokenizerFast:
    """Train a WordPiece ("bert") or Unigram ("xlm-roberta") tokenizer on `texts`, wrapped like the real model's.

    `model_max_length` is `max_position - 2` (XLM-R's positions start after the padding index, as in 514 → 512).
    A Unigram vocabulary may end up smaller than `vocab_size`; use `len(tokenizer)` for the model.
    `alphabet`: characters the vocabulary must hold even if `texts` lack them (mBERT and XLM-R cover the
    characters of many languages they were not trained on: unseen languages fragment rather than become UNK).
    """
    model_max_length = max_position - 2
    if architecture == "bert":
        texts = list(texts)
        tok = _bert_tokenizer(models.WordPiece(unk_token="[UNK]"))
        # Determinism: the trainer numbers the word-inner forms ("##a") in the order it meets them in a hash map
        # that Rust seeds afresh in every process, and it breaks ties between equally frequent merges by those
        # numbers, so two processes learn different vocabularies. Numbering every "##c" up front, in sorted
        # order (as leading pseudo-special tokens of a scratch tokenizer), leaves the trainer nothing to number.
        # The same forms of `alphabet` are what WordPiece needs anyway: without "##ë" a word holding an inner ë
        # becomes [UNK] (the trainer only adds the forms of characters it saw inside words).
        characters = sorted({c for text in texts for c in text if not c.isspace()} | set(alphabet))
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            special_tokens=BERT_SPECIAL_TOKENS + [f"##{c}" for c in characters],
            continuing_subword_prefix="##",
            initial_alphabet=sorted(set(alphabet)),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        tok = _bert_tokenizer(
            models.WordPiece(tok.get_vocab(), unk_token="[UNK]", continuing_subword_prefix="##")
        )  # a fresh tokenizer: the "##c" forms are ordinary pieces again, not special tokens
        tok.add_special_tokens(BERT_SPECIAL_TOKENS)
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return BertTokenizerFast(
            tokenizer_object=tok,
            do_lower_case=False,  # without these two the wrapper rebuilds an uncased, accent-stripping normalizer
            strip_accents=False,
            unk_token="[UNK]",
            sep_token="[SEP]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            mask_token="[MASK]",
            model_max_length=model_max_length,
        )
    if architecture in ("xlm-roberta", "llama"):
        tok = Tokenizer(models.Unigram())
        # SentencePiece-like: NFKC, collapse runs of spaces, then "▁" marks the start of each word.
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=XLMR_SPECIAL_TOKENS,
            unk_token="<unk>",
            initial_alphabet=sorted(set(alphabet)),
            show_progress=False,
            shrinking_factor=0.75,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        tok.model = _canonical_unigram(tok)
        bos_id, eos_id = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        if architecture == "llama":  # a decoder's text starts with <s> only, as LLaMA-3's does
            tok.post_processor = processors.TemplateProcessing(
                single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
            )
            return PreTrainedTokenizerFast(
                tokenizer_object=tok,
                bos_token="<s>",
                eos_token="</s>",
                unk_token="<unk>",
                pad_token="<pad>",
                model_max_length=model_max_length,
            )
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", bos_id), ("</s>", eos_id)],
        )
        return XLMRobertaTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length)
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


def build_tiny_model(
    architecture: Architecture, config: TinyModel, tokenizer: PreTrainedTokenizerFast
) -> PreTrainedModel:
    """A randomly initialised `BertForMaskedLM` / `XLMRobertaForMaskedLM` / `LlamaForCausalLM` of the sizes
    `config` (params/models.yaml `tiny`, or the `BaseModelSpec`, which is one) matching `tokenizer` (seed
    beforehand).

    The vocabulary is `len(tokenizer)`, the special-token ids come from the tokenizer, and the output projection is
    tied to the input embeddings, as in the real checkpoints.
    """
    sizes = dict(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    if architecture == "bert":
        return BertForMaskedLM(BertConfig(type_vocab_size=2, **sizes))
    ends = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if architecture == "llama":  # untied output projection, as in LLaMA-3-8B
        untied = {**sizes, "tie_word_embeddings": False}
        return LlamaForCausalLM(LlamaConfig(num_key_value_heads=config.num_heads, **ends, **untied))
    if architecture == "xlm-roberta":
        # XLM-R numbers positions from pad_token_id + 1, so max_position must exceed model_max_length + pad id.
        return XLMRobertaForMaskedLM(XLMRobertaConfig(type_vocab_size=1, **ends, **sizes))
    raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


class SentenceSummaryCollator(DataCollatorForLanguageModeling):
    """Masked LM, plus: the first token ([CLS] / <s>) must predict one random word of its sequence.

    MLM alone never trains the first position, so a tiny frozen model gives a near-constant [CLS] vector and a
    task head reading it learns nothing. mBERT got a sentence-level signal from next-sentence prediction; this
    bag-of-words target is the tiny models' stand-in (their pre-training only: adapters train with plain MLM).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast, mlm_probability: float, seed: int):
        super().__init__(tokenizer, mlm_probability=mlm_probability, seed=seed)
        self.special = set(tokenizer.all_special_ids)

    def torch_call(self, examples: list[dict]) -> dict:
        batch = super().torch_call(examples)  # draws from self.generator, which train_lm seeds per batch
        for i, example in enumerate(examples):
            words = [t for t in example["input_ids"] if t not in self.special]
            if words:
                pick = torch.randint(len(words), (1,), generator=self.generator).item()
                batch["labels"][i, 0] = words[pick]
        return batch


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    train_config: TrainConfig,
    progress: bool = True,
) -> dict:
    """Full-model pre-training (every parameter trains): masked LM + the [CLS] summary target, or causal LM for a
    decoder (`train_config.objective`); `train_lm`'s history."""
    for p in model.parameters():
        p.requires_grad_(True)
    collator = (
        SentenceSummaryCollator(tokenizer, train_config.mlm_probability, train_config.seed)
        if train_config.objective == "mlm"
        else None  # a decoder: plain next-token prediction
    )
    return train_lm(
        model, tokenizer, train_texts, val_texts, train_config, progress=progress, collator=collator
    )
