"""An OpenAI-compatible chat/completions client (vLLM, TGI, Ollama, DeepSeek's API): retries with back-off, timeouts, the API key read from the environment and never written."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from lrl_utils.llm.backends import Generation, LLMRequestError, OnResult, PromptLike

_RETRYABLE_STATUS = {408, 409, 429}


class OpenAIBackend:
    """Chat completions (`chat=True`, the prompt's messages) or completions (its text) from an OpenAI-compatible API.

    The key comes only from `os.environ[api_key_env]`. Each request has `timeout` seconds; 429, 408/409, 5xx,
    connection errors and timeouts are retried up to `max_retries` times after
    `min(max_backoff, initial_backoff * 2**attempt)` seconds scaled by a random factor in [0.5, 1] (a server's
    Retry-After is honoured up to `max_backoff`). `concurrency` requests run in parallel threads.
    `extra_body` is sent with every request (e.g. vLLM's own sampling options).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_new_tokens: int = 64,
        timeout: float = 60.0,
        max_retries: int = 5,
        chat: bool = True,
        temperature: float = 0.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 1,
        extra_body: dict[str, Any] | None = None,
    ):
        import openai

        key = os.environ.get(api_key_env)
        if not key:
            raise LLMRequestError(
                f"the environment variable {api_key_env} holding the API key is not set", attempts=0
            )
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.max_new_tokens, self.timeout, self.max_retries = max_new_tokens, timeout, max_retries
        self.chat, self.temperature = chat, temperature
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.concurrency, self.extra_body = max(1, concurrency), extra_body
        # The client's own retries are off: ours are explicit, bounded and logged in the error.
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)
        self.settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "chat": chat}

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r}, "
            f"chat={self.chat}, max_new_tokens={self.max_new_tokens})"
        )

    def __getstate__(self) -> None:
        raise TypeError("OpenAIBackend holds an API key and is not picklable")

    def _redact(self, text: str) -> str:
        """`text` with every occurrence of the API key replaced by `***`."""
        return text.replace(self._client.api_key, "***")

    def _request(self, prompt: PromptLike) -> Generation:
        common = {"model": self.model, "max_tokens": self.max_new_tokens, "temperature": self.temperature}
        common.update({"extra_body": self.extra_body} if self.extra_body else {})
        if self.chat:
            response = self._client.chat.completions.create(
                messages=[dict(m) for m in prompt.messages], **common
            )
            text = response.choices[0].message.content or ""
        else:
            response = self._client.completions.create(prompt=prompt.text, **common)
            text = response.choices[0].text or ""
        used = response.usage
        return Generation(text, used.prompt_tokens if used else 0, used.completion_tokens if used else 0)

    def _call(self, prompt: PromptLike) -> Generation:
        import openai

        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._request(prompt)
            except openai.APITimeoutError:
                status, reason, retry_after = None, f"timed out after {self.timeout}s", None
            except openai.APIConnectionError as exc:
                status, reason, retry_after = None, f"connection error ({type(exc).__name__})", None
            except openai.APIStatusError as exc:  # the body may quote the key: redact before cutting it short
                status, reason = exc.status_code, f"HTTP {exc.status_code}: {self._redact(exc.message)[:300]}"
                retry_after = exc.response.headers.get("retry-after")
                if status not in _RETRYABLE_STATUS and status < 500:
                    raise LLMRequestError(
                        self._redact(f"{self.model}: item {prompt.item_id!r}: {reason}"), status, attempt + 1
                    ) from None
            if attempt + 1 == attempts:
                message = f"{self.model}: item {prompt.item_id!r} failed after {attempts} attempts: {reason}"
                raise LLMRequestError(self._redact(message), status, attempts) from None
            delay = min(self.max_backoff, self.initial_backoff * 2**attempt) * random.uniform(0.5, 1.0)
            try:
                delay = min(self.max_backoff, max(delay, float(retry_after))) if retry_after else delay
            except ValueError:  # an HTTP date: keep our own delay
                pass
            time.sleep(delay)
        raise AssertionError("unreachable")

    def generate(self, prompts: Sequence[PromptLike], on_result: OnResult | None = None) -> list[Generation]:
        """Answer `prompts`; each result goes to `on_result` (in the calling thread) as soon as it arrives.

        If a request fails for good, the requests already under way finish and are reported, the rest are not
        started, and the first error is raised.
        """
        out: list[Generation | None] = [None] * len(prompts)
        error: BaseException | None = None
        running: dict[Future[Generation], int] = {}
        queue = iter(range(len(prompts)))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while True:
                while error is None and len(running) < self.concurrency:  # start no more after a failure
                    i = next(queue, None)
                    if i is None:
                        break
                    running[pool.submit(self._call, prompts[i])] = i
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=running.__getitem__):
                    i = running.pop(future)
                    if future.exception() is not None:
                        error = error or future.exception()
                        continue
                    out[i] = future.result()
                    if on_result is not None:
                        on_result(i, out[i])
        if error is not None:
            raise error
        return [g for g in out if g is not None]
