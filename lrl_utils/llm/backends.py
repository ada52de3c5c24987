"""Backends that answer prompts with an LLM, and a resumable on-disk response cache.

Two backends share one interface, `generate(prompts, on_result=None) -> list[Generation]`:

- `TransformersBackend`: a local Hugging Face causal LM, greedy, batched with left padding; the chat template when
  the tokenizer has one (`use_chat_template="auto"`), else the raw completion text.
- `OpenAIBackend`: any OpenAI-compatible endpoint through the official `openai` client (OpenAI itself, vLLM, ...),
  with its own bounded exponential backoff on 429 / 5xx / connection errors / timeouts. The API key is read only
  from the environment variable named by `api_key_env` and is kept out of reprs and of the errors raised here.

A prompt is any object with `.item_id`, `.text` (the raw-completion prompt) and `.messages` (the chat form, a
sequence of `{"role": ..., "content": ...}`). `generate_all` looks every prompt up in a `ResponseCache` first,
sends only the missing ones, and appends each response to the cache the moment it arrives, so a killed run
resumes where it stopped without paying twice.

The cache is JSONL rather than sqlite: append-only writes (flushed and fsynced per response) cannot corrupt earlier
records, a torn last line from a kill is detectable and dropped, and the file is readable, diffable and
concatenable without tools. One process writes a cache at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

OnResult = Callable[[int, "Generation"], None]


@dataclass
class Generation:
    """One response: the newly generated text and the token counts the backend reported for it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


class PromptLike(Protocol):
    item_id: str
    text: str
    messages: Sequence[dict[str, str]]


class Backend(Protocol):
    settings: dict[str, Any]

    def generate(
        self, prompts: Sequence[PromptLike], on_result: OnResult | None = None
    ) -> list[Generation]: ...


class LLMRequestError(RuntimeError):
    """A request that failed for good (a non-retryable error, or retries exhausted). Never carries the API key."""

    def __init__(self, message: str, status_code: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


def response_key(model: str, prompt: PromptLike, generation: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the model, the prompt's text and messages, and the generation settings."""
    messages = [dict(m) for m in prompt.messages]
    payload = {"model": model, "text": prompt.text, "messages": messages, "generation": generation}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSONL of responses keyed by `response_key`; the last record of a key wins.

    Each `put` appends one line and flushes and fsyncs it. On opening, an unparsable *last* line (a write torn by a
    kill) is dropped and cut from the file, so the next append starts on a clean line; an unparsable line anywhere
    else is real corruption and raises.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        last = max((n for n, line in enumerate(lines) if line.strip()), default=-1)
        offset = 0
        for n, line in enumerate(lines):
            if line.strip():
                try:
                    record = json.loads(line)
                    self._records[record["key"]] = record
                except (ValueError, KeyError, TypeError):
                    if n != last:
                        raise ValueError(f"{self.path}: line {n + 1} is not a cache record") from None
                    with self.path.open("r+b") as f:  # a write torn by a kill: cut it off
                        f.truncate(offset)
                    return
            offset += len(line) + 1
        if data and not data.endswith(b"\n"):  # a complete last record without its newline
            with self.path.open("ab") as f:
                f.write(b"\n")

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Generation | None:
        record = self._records.get(key)
        if record is None:
            return None
        return Generation(record["text"], record["prompt_tokens"], record["completion_tokens"], cached=True)

    def put(self, key: str, generation: Generation, **meta: Any) -> None:
        """Append `generation` under `key` (with JSON-serialisable `meta`, e.g. item_id and model) and fsync it."""
        record = {"key": key, **meta, **{k: v for k, v in asdict(generation).items() if k != "cached"}}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._records[key] = record


def generate_all(
    backend: Backend,
    prompts: Sequence[PromptLike],
    cache: ResponseCache,
    model_name: str,
    generation: dict[str, Any],
    progress: bool = True,
) -> list[Generation]:
    """Answer every prompt, from `cache` where possible; returns generations in prompt order.

    Cached prompts (and repeats of a prompt within `prompts`) are not sent; the rest go to `backend.generate`,
    which batches them itself and reports each response as it arrives, when it is written to the cache at once.
    `generation` enters the cache key; settings it shares with `backend.settings` must agree, so that a key never
    names settings the backend did not use.
    """
    from tqdm.auto import tqdm

    settings = getattr(backend, "settings", {})
    clashes = {k: (v, settings[k]) for k, v in generation.items() if settings.get(k, v) != v}
    if clashes:
        raise ValueError(f"generation settings disagree with the backend's (given, backend): {clashes}")
    keys = [response_key(model_name, p, generation) for p in prompts]
    results: list[Generation | None] = [cache.get(k) for k in keys]
    first_of: dict[str, int] = {}
    for i, key in enumerate(keys):
        if results[i] is None:
            first_of.setdefault(key, i)
    pending = sorted(first_of.values())
    bar = tqdm(total=len(prompts), initial=len(prompts) - len(pending), desc=model_name, disable=not progress)

    def on_result(j: int, gen: Generation) -> None:
        i = pending[j]
        cache.put(keys[i], gen, item_id=prompts[i].item_id, model=model_name)
        results[i] = gen
        bar.update(1)

    try:
        if pending:
            backend.generate([prompts[i] for i in pending], on_result=on_result)
    finally:
        bar.close()
    for i, key in enumerate(keys):
        if results[i] is None:  # a repeat of a prompt answered in this run
            results[i] = cache.get(key)
    return [r for r in results if r is not None]


def usage(gens: Sequence[Generation]) -> dict[str, int]:
    """Token totals over all `gens` (the evaluation's full cost, resumed or not); `calls`: answered in this run."""
    return {
        "prompt_tokens": sum(g.prompt_tokens for g in gens),
        "completion_tokens": sum(g.completion_tokens for g in gens),
        "calls": sum(not g.cached for g in gens),
        "cached": sum(g.cached for g in gens),
    }


class TransformersBackend:
    """Greedy generation with a local causal LM (`AutoModelForCausalLM`), batched with left padding.

    `use_chat_template`: "auto" (the chat template when the tokenizer has one), True (required) or False (the raw
    `.text`). `dtype`: "auto" is bf16 on a CUDA GPU that supports it and float32 otherwise; or a torch dtype or
    its name. `device_map` is passed to `from_pretrained` (e.g. "auto" to spread a large model over GPUs); without
    it the model goes to the GPU if there is one. Prompts are sorted by length before batching (less padding).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str],
        max_new_tokens: int = 64,
        batch_size: int = 8,
        use_chat_template: bool | str = "auto",
        dtype: Any = "auto",
        device_map: str | dict[str, Any] | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if use_chat_template not in ("auto", True, False):
            raise ValueError(f"use_chat_template must be 'auto', True or False, got {use_chat_template!r}")
        self.model_name_or_path = str(model_name_or_path)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if use_chat_template is True and not has_template:
            raise ValueError(f"{self.model_name_or_path}: the tokenizer has no chat template")
        self.use_chat_template = has_template and use_chat_template in ("auto", True)
        if dtype == "auto":
            cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            dtype = torch.bfloat16 if cuda_bf16 else torch.float32
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_name_or_path, dtype=dtype, device_map=device_map
        )
        if device_map is None:
            self.model.to("cuda" if torch.cuda.is_available() else "cpu")
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        self.eos_ids = {e for e in eos_ids if e is not None}
        self.settings = {"max_new_tokens": max_new_tokens, "temperature": 0.0, "chat": self.use_chat_template}

    def __repr__(self) -> str:
        return (
            f"TransformersBackend({self.model_name_or_path!r}, max_new_tokens={self.max_new_tokens}, "
            f"batch_size={self.batch_size}, chat={self.use_chat_template})"
        )

    def encode(self, prompt: PromptLike) -> list[int]:
        """The token ids the model is given for `prompt` (chat-templated or raw, special tokens included)."""
        if self.use_chat_template:
            rendered = self.tokenizer.apply_chat_template(
                [dict(m) for m in prompt.messages], tokenize=False, add_generation_prompt=True
            )
            return self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        return self.tokenizer(prompt.text)["input_ids"]

    def generate(self, prompts: Sequence[PromptLike], on_result: OnResult | None = None) -> list[Generation]:
        import torch

        from lrl_utils.training.loop import attention_kernels  # cuDNN attention re-plans at every new length

        encoded = [self.encode(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out: list[Generation | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = self.tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt"
            ).to(self.model.device)
            with torch.no_grad(), attention_kernels(self.model.device):
                generated = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=sorted(self.eos_ids),
                )
            new_tokens = generated[:, inputs["input_ids"].shape[1] :].tolist()
            for row, i in enumerate(batch):
                tokens = new_tokens[row]
                stop = next((k + 1 for k, t in enumerate(tokens) if t in self.eos_ids), len(tokens))
                text = self.tokenizer.decode(tokens[:stop], skip_special_tokens=True)
                out[i] = Generation(text, len(encoded[i]), stop)
                if on_result is not None:
                    on_result(i, out[i])
        return [g for g in out if g is not None]
