"""LLM backends: an OpenAI-compatible client against a local fake server, the response cache, a tiny local Llama,
and the run settings of params/llms.yaml (device_map, dtype, timeout, retries, backoff, concurrency)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import yaml

from lrl_utils.config.params import ParamError, load_registry
from lrl_utils.config.specs import LLMSpec
from lrl_utils.llm.backends import (
    Generation,
    LLMRequestError,
    ResponseCache,
    TransformersBackend,
    generate_all,
    response_key,
    usage,
)
from lrl_utils.llm.baselines import cache_path, make_backend
from lrl_utils.llm.openai_backend import OpenAIBackend
from tests.conftest import tiny_profile, toy_corpus

SECRET = "sk-test-Zq81SECRETvalue"
KEY_ENV = "LRL_TEST_LLM_KEY"


@dataclass(frozen=True)
class FakePrompt:
    """Stand-in for llm_prompts.Prompt: the backends only use these three attributes."""

    item_id: str
    text: str
    messages: tuple[dict[str, str], ...]


def make_prompt(i: int, words: str = "") -> FakePrompt:
    content = f"question {i} {words}".strip()
    return FakePrompt(f"item-{i}", f"Q: {content}\nA:", ({"role": "user", "content": content},))


def answer_for(content: str) -> str:
    return f"answer to {content}"


class FakeAPI:
    """What the server does: a script of actions consumed one per request, then `default`; every request logged.

    `by_model` overrides the action for requests naming a model (e.g. one registry entry whose key is rejected);
    `reply(question) -> text` writes the answers (default `answer_for`). Actions: ok, slow:<seconds> (then ok),
    429, 500, 400, 401-echo and 500-echo (quote the Authorization header it got), 401-echo-long (the same, the key ~300
    characters into the message)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(
        self,
        script: list[str] | None = None,
        default: str = "ok",
        reply: Callable[[str], str] = answer_for,
        by_model: dict[str, str] | None = None,
    ) -> None:
        with self.lock:
            self.requests: list[dict] = []
            self.answered: list[dict] = []  # what was answered, with the usage reported
            self.script = list(script or [])
            self.default = default
            self.reply = reply
            self.by_model = dict(by_model or {})

    def next_action(self, record: dict) -> str:
        with self.lock:
            self.requests.append(record)
            if record["body"].get("model") in self.by_model:
                return self.by_model[record["body"]["model"]]
            return self.script.pop(0) if self.script else self.default


def make_handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization", "")
            action = api.next_action(
                {"path": self.path, "auth": auth, "body": body, "time": time.monotonic()}
            )
            error = {"type": "test", "code": None, "param": None}
            if action == "429":
                return self.send_json(429, {"error": {"message": "slow down", **error}})
            if action == "500":
                return self.send_json(500, {"error": {"message": "server broke", **error}})
            if action == "400":
                return self.send_json(400, {"error": {"message": "bad request", **error}})
            if action == "401-echo":  # a server that quotes the key it was sent
                return self.send_json(401, {"error": {"message": f"invalid key {auth}", **error}})
            if action == "500-echo":  # a retryable error that quotes the key
                return self.send_json(500, {"error": {"message": f"failed for {auth}", **error}})
            if action == "401-echo-long":  # ... where a message cut at 300 characters cuts the key in two
                message = f"invalid key {'.' * 240} {auth} (check your account settings)"
                return self.send_json(401, {"error": {"message": message, **error}})
            if action.startswith("slow"):
                time.sleep(float(action.split(":")[1]))
            try:
                self.answer(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def answer(self, body: dict) -> None:
            if self.path == "/v1/chat/completions":
                question = body["messages"][-1]["content"]
                text = api.reply(question)
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
                kind = "chat.completion"
            elif self.path == "/v1/completions":
                question = body["prompt"]
                text = " " + api.reply(question)
                choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                kind = "text_completion"
            else:
                return self.send_json(404, {"error": {"message": "no such route"}})
            n_in, n_out = len(question.split()), len(text.split())
            usage_ = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
            with api.lock:
                api.answered.append({"question": question, "text": text, **usage_})
            payload = {"id": "x", "object": kind, "created": 0, "model": body["model"], "choices": [choice]}
            self.send_json(200, {**payload, "usage": usage_})

    return Handler


@pytest.fixture(scope="module")
def server():
    api = FakeAPI()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(api))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield api
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def api(server, monkeypatch):
    server.reset()
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-wrong-key")
    return server


def backend(api: FakeAPI, **kw) -> OpenAIBackend:
    options = dict(base_url=api.base_url, api_key_env=KEY_ENV, initial_backoff=0.01, max_backoff=0.05)
    return OpenAIBackend("fake-model", **{**options, **kw})


# ---------------------------------------------------------------- OpenAI-compatible backend


def test_chat_and_completion_calls_with_usage(api):
    prompts = [make_prompt(i) for i in range(3)]
    gens = backend(api, max_new_tokens=7, temperature=0.0).generate(prompts)
    assert [g.text for g in gens] == [answer_for(p.messages[0]["content"]) for p in prompts]
    assert [(g.prompt_tokens, g.completion_tokens) for g in gens] == [(2, 4)] * 3
    assert [r["path"] for r in api.requests] == ["/v1/chat/completions"] * 3
    body = api.requests[0]["body"]
    assert body["model"] == "fake-model" and body["max_tokens"] == 7 and body["temperature"] == 0.0
    assert body["messages"] == [{"role": "user", "content": "question 0"}]
    assert {r["auth"] for r in api.requests} == {f"Bearer {SECRET}"}  # from KEY_ENV, not OPENAI_API_KEY

    api.reset()
    gens = backend(api, chat=False, concurrency=2).generate(prompts)
    assert [r["path"] for r in api.requests] == ["/v1/completions"] * 3
    assert sorted(r["body"]["prompt"] for r in api.requests) == [p.text for p in prompts]
    assert [g.text for g in gens] == [" " + answer_for(p.text) for p in prompts]
    assert usage(gens) == {"prompt_tokens": 12, "completion_tokens": 18, "calls": 3, "cached": 0}


def test_retries_429_and_500_with_backoff(api):
    api.reset(["429", "500", "ok"])
    (gen,) = backend(api, initial_backoff=0.1, max_backoff=1.0).generate([make_prompt(0)])
    assert gen.text == answer_for("question 0")
    times = [r["time"] for r in api.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1  # 0.1 * 2**k, jitter in [0.5, 1]


def test_non_retryable_error_is_not_retried(api):
    api.reset(["400"])
    with pytest.raises(LLMRequestError, match="HTTP 400") as err:
        backend(api).generate([make_prompt(0)])
    assert err.value.status_code == 400 and len(api.requests) == 1


def test_retries_exhausted(api):
    api.reset(default="500")
    with pytest.raises(LLMRequestError, match="item-0' failed after 3 attempts: HTTP 500") as err:
        backend(api, max_retries=2).generate([make_prompt(0)])
    assert err.value.status_code == 500 and err.value.attempts == 3 and len(api.requests) == 3


def test_timeout_is_retried_then_raises(api):
    api.reset(default="slow:1.5")
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match=r"failed after 2 attempts: timed out after 0.2s"):
        backend(api, timeout=0.2, max_retries=1).generate([make_prompt(0)])
    assert time.monotonic() - start < 1.2 and len(api.requests) == 2
    api.reset(["slow:0.5"])  # a slow first answer, then a fast one
    (gen,) = backend(api, timeout=0.2, max_retries=1).generate([make_prompt(1)])
    assert gen.text == answer_for("question 1") and len(api.requests) == 2


def test_key_only_from_the_named_variable(api, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(LLMRequestError) as err:
        backend(api)  # OPENAI_API_KEY is set, but it is not the variable named
    message = str(err.value)
    assert KEY_ENV in message and "\n" not in message and "sk-" not in message
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(LLMRequestError, match=KEY_ENV):
        backend(api)
    assert api.requests == []


def test_key_never_shown(api):
    b = backend(api, max_retries=0)
    assert SECRET not in repr(b) and SECRET not in str(b) and KEY_ENV in repr(b)
    with pytest.raises(TypeError):
        pickle.dumps(b)
    api.reset(["401-echo"])
    with pytest.raises(LLMRequestError) as err:
        b.generate([make_prompt(0)])
    assert SECRET in json.dumps(api.requests[0]["auth"])  # the server did see it, and quoted it back
    assert "HTTP 401" in str(err.value) and "***" in str(err.value)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def leaks(text: str) -> bool:
    """Whether `text` holds the key or a piece of it (6 characters or more, from its start)."""
    return any(SECRET[:k] in text for k in range(6, len(SECRET) + 1))


@pytest.mark.parametrize(
    ("script", "retries", "words"),
    [
        (["401-echo"], 2, "HTTP 401"),
        (["401-echo-long"], 2, "HTTP 401"),  # the key straddles the 300-character cut of the message
        (["500-echo", "500-echo"], 1, "failed after 2 attempts: HTTP 500"),
    ],
)
def test_a_key_quoted_in_an_error_is_redacted(api, script, retries, words):
    api.reset(script)
    with pytest.raises(LLMRequestError) as err:
        backend(api, max_retries=retries).generate([make_prompt(0)])
    assert len(api.requests) == len(script) and SECRET in json.dumps(api.requests[0]["auth"])
    shown = "".join(traceback.format_exception(err.value)) + repr(err.value)
    assert words in shown and "***" in shown and not leaks(shown)


# ---------------------------------------------------------------- cache and generate_all


def test_cache_resume_makes_no_repeated_calls(api, tmp_path):
    prompts = [make_prompt(i) for i in range(5)]
    settings = {"max_new_tokens": 16, "temperature": 0.0}
    path = tmp_path / "responses.jsonl"
    api.reset(["ok", "ok", "ok", "400"])  # the 4th request fails for good: the run stops there
    with pytest.raises(LLMRequestError):
        generate_all(backend(api, max_new_tokens=16), prompts, ResponseCache(path), "fake-model", settings)
    assert len(path.read_text().splitlines()) == 3 and len(api.requests) == 4

    api.reset()
    cache = ResponseCache(path)
    assert len(cache) == 3 and response_key("fake-model", prompts[0], settings) in cache
    gens = generate_all(
        backend(api, max_new_tokens=16), prompts, cache, "fake-model", settings, progress=False
    )
    assert [r["body"]["messages"][0]["content"] for r in api.requests] == ["question 3", "question 4"]
    assert [g.text for g in gens] == [answer_for(f"question {i}") for i in range(5)]
    assert [g.cached for g in gens] == [True, True, True, False, False]
    assert usage(gens) == {"prompt_tokens": 10, "completion_tokens": 20, "calls": 2, "cached": 3}

    api.reset()
    again = generate_all(
        backend(api, max_new_tokens=16), prompts, ResponseCache(path), "fake-model", settings
    )
    assert (
        api.requests == []
        and all(g.cached for g in again)
        and [g.text for g in again] == [g.text for g in gens]
    )
    other = {"max_new_tokens": 16, "temperature": 0.0, "seed": 1}  # other settings: other keys, new calls
    generate_all(backend(api, max_new_tokens=16), prompts[:1], ResponseCache(path), "fake-model", other)
    assert len(api.requests) == 1


def test_generate_all_sends_repeats_once_and_checks_settings(api, tmp_path):
    prompts = [make_prompt(0), make_prompt(1), make_prompt(0)]
    cache = ResponseCache(tmp_path / "c.jsonl")
    gens = generate_all(backend(api), prompts, cache, "m", {"max_new_tokens": 64}, progress=False)
    assert len(api.requests) == 2 and len(cache) == 2
    assert gens[0].text == gens[2].text and [g.cached for g in gens] == [False, False, True]
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_all(backend(api), prompts, cache, "m", {"max_new_tokens": 5}, progress=False)


def test_cache_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = ResponseCache(path)
    cache.put("a", Generation("alpha", 3, 1), item_id="i-a")
    cache.put("b", Generation("béta", 4, 2, cached=False))
    assert ResponseCache(path).get("b") == Generation("béta", 4, 2, cached=True)
    intact = path.read_bytes()
    with path.open("ab") as f:
        f.write(b'{"key": "c", "text": "gam')  # killed mid-write
    cache = ResponseCache(path)
    assert len(cache) == 2 and "c" not in cache and path.read_bytes() == intact
    cache.put("c", Generation("gamma", 1, 1))
    assert len(ResponseCache(path)) == 3 and ResponseCache(path).get("c").text == "gamma"
    path.write_bytes(intact + b"garbage\n" + intact)  # corruption in the middle is not a torn write
    with pytest.raises(ValueError, match="line 3"):
        ResponseCache(path)


def test_response_key_covers_model_prompt_and_settings():
    p = make_prompt(0)
    key = response_key("m", p, {"a": 1, "b": 2})
    assert key == response_key("m", FakePrompt("other-id", p.text, p.messages), {"b": 2, "a": 1})
    assert len({key, response_key("n", p, {"a": 1, "b": 2}), response_key("m", p, {"a": 1})}) == 3
    assert key != response_key("m", FakePrompt(p.item_id, p.text + " ", p.messages), {"a": 1, "b": 2})
    changed = ({"role": "system", "content": "x"}, *p.messages)
    assert key != response_key("m", FakePrompt(p.item_id, p.text, changed), {"a": 1, "b": 2})


# ---------------------------------------------------------------- local transformers backend

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from lrl_utils.config.params import TinyModel
    from lrl_utils.training.base_models import build_tiny_model, train_tokenizer

    texts = toy_corpus(300, seed=0)
    tokenizer = train_tokenizer("llama", texts, vocab_size=200)
    torch.manual_seed(0)
    model = build_tiny_model("llama", TinyModel(hidden_size=32, num_layers=2, num_heads=2), tokenizer)
    root = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(root / "raw")
    tokenizer.save_pretrained(root / "raw")
    model.save_pretrained(root / "chat")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(root / "chat")
    return root, texts


def text_prompts(texts: list[str], n: int) -> list[FakePrompt]:
    out = []
    for i in range(n):
        words = " ".join(texts[i].split()[: 1 + 2 * i])  # different lengths: padding in every batch
        out.append(FakePrompt(f"t{i}", words, ({"role": "user", "content": words},)))
    return out


def test_transformers_batched_equals_one_by_one(tiny_llama):
    root, texts = tiny_llama
    prompts = text_prompts(texts, 5)
    batched = TransformersBackend(root / "raw", max_new_tokens=6, batch_size=4)
    assert batched.use_chat_template is False and batched.tokenizer.padding_side == "left"
    gens = batched.generate(prompts)
    single = TransformersBackend(root / "raw", max_new_tokens=6, batch_size=1).generate(prompts)
    assert gens == single
    assert [g.prompt_tokens for g in gens] == [len(batched.tokenizer(p.text)["input_ids"]) for p in prompts]
    assert all(0 < g.completion_tokens <= 6 for g in gens) and any(g.text for g in gens)
    # Only the new text: the same as decoding an unpadded reference run after its prompt.
    ids = batched.tokenizer(prompts[2].text, return_tensors="pt")["input_ids"]
    ref = batched.model.generate(
        ids, max_new_tokens=6, do_sample=False, pad_token_id=batched.tokenizer.pad_token_id
    )
    new = ref[0, ids.shape[1] :].tolist()
    stop = next((k + 1 for k, t in enumerate(new) if t in batched.eos_ids), len(new))
    assert gens[2].text == batched.tokenizer.decode(new[:stop], skip_special_tokens=True)
    assert gens[2].completion_tokens == stop


def test_transformers_pads_on_the_left(tiny_llama, monkeypatch):
    root, texts = tiny_llama
    b = TransformersBackend(root / "raw", max_new_tokens=2, batch_size=8)
    seen = []
    real_generate = b.model.generate

    def spy(**kw):
        seen.append(kw)
        return real_generate(**kw)

    monkeypatch.setattr(b.model, "generate", spy)
    prompts = text_prompts(texts, 3)
    b.generate(prompts)
    (call,) = seen
    mask, ids = call["attention_mask"], call["input_ids"]
    lengths = [len(b.encode(p)) for p in prompts]
    row = min(range(3), key=lambda r: int(mask[r].sum()))  # rows are sorted by length; find the shortest
    assert int(mask[row].sum()) == min(lengths) < ids.shape[1]
    assert mask[row, 0] == 0 and mask[row, -1] == 1 and ids[row, 0] == b.tokenizer.pad_token_id
    assert call["do_sample"] is False


def test_transformers_pad_defaults_to_eos(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, texts = tiny_llama
    tok = AutoTokenizer.from_pretrained(root / "raw")
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    AutoModelForCausalLM.from_pretrained(root / "raw").save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).pad_token is None
    b = TransformersBackend(tmp_path, max_new_tokens=3, batch_size=4)
    assert b.tokenizer.pad_token == b.tokenizer.eos_token == "</s>"
    prompts = text_prompts(texts, 3)
    assert b.generate(prompts) == TransformersBackend(tmp_path, max_new_tokens=3, batch_size=1).generate(
        prompts
    )


def test_transformers_chat_template_or_raw_text(tiny_llama, tmp_path):
    root, texts = tiny_llama
    prompts = text_prompts(texts, 3)
    chat = TransformersBackend(root / "chat", max_new_tokens=4, batch_size=2)
    raw = TransformersBackend(root / "chat", max_new_tokens=4, use_chat_template=False)
    assert chat.use_chat_template is True and raw.use_chat_template is False
    tok = chat.tokenizer
    rendered = f"user: {prompts[1].text}\nassistant:"
    assert (
        tok.apply_chat_template(list(prompts[1].messages), tokenize=False, add_generation_prompt=True)
        == rendered
    )
    assert chat.encode(prompts[1]) == tok(rendered, add_special_tokens=False)["input_ids"]
    assert raw.encode(prompts[1]) == tok(prompts[1].text)["input_ids"]
    gens_chat, gens_raw = chat.generate(prompts), raw.generate(prompts)
    assert [g.prompt_tokens for g in gens_chat] == [len(chat.encode(p)) for p in prompts]
    assert all(c.prompt_tokens > r.prompt_tokens for c, r in zip(gens_chat, gens_raw, strict=True))
    assert gens_chat == TransformersBackend(root / "chat", max_new_tokens=4, batch_size=1).generate(prompts)
    with pytest.raises(ValueError, match="no chat template"):
        TransformersBackend(root / "raw", use_chat_template=True)

    path = tmp_path / "c.jsonl"
    settings = {"max_new_tokens": 4, "chat": True}
    first = generate_all(chat, prompts, ResponseCache(path), "tiny", settings, progress=False)
    again = generate_all(chat, prompts, ResponseCache(path), "tiny", settings, progress=False)
    assert [g.cached for g in again] == [True] * 3
    assert [(g.text, g.completion_tokens) for g in again] == [(g.text, g.completion_tokens) for g in first]


# ---------------------------------------------------------------- run settings from params/llms.yaml


def add_llm(project, name: str, **entry) -> None:
    path = project.root / "params" / "llms.yaml"
    data = yaml.safe_load(path.read_text())
    data["llms"][name] = entry
    path.write_text(yaml.safe_dump(data))


def llm_specs(project, *names: str, task: str = "sa") -> list:
    """The run specs the grid builds for `names` (one zero-shot run each, language qac)."""
    from lrl_utils.orchestration.grid import Grid

    project.add_profile("llmp", tiny_profile(llm_baselines={"llms": list(names), "tasks": [task]}))
    grid = Grid("llmp")
    return [grid.llm(name, "qac", task) for name in names]


def test_device_map_and_dtype_from_params_reach_from_pretrained(project, tiny_llama, monkeypatch):
    from transformers import AutoModelForCausalLM

    root, texts = tiny_llama
    add_llm(
        project,
        "big",
        backend="transformers",
        display="big",
        hub_id="org/big",
        device_map="auto",
        dtype="float32",
    )
    add_llm(project, "small", backend="transformers", display="small", hub_id="org/small")
    big, small = llm_specs(project, "big", "small")
    assert (big.device_map, big.dtype, small.device_map, small.dtype) == ("auto", "float32", None, "auto")
    assert big.timeout is big.max_retries is big.concurrency is None  # the other backend's settings: null
    assert big.folder() != dataclasses.replace(big, device_map=None).folder()  # part of the run hash

    calls = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(path, **kw):
        calls.append(kw)
        return real(path, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    b = make_backend(big, root / "raw")
    assert calls[-1]["device_map"] == "auto" and calls[-1]["dtype"] is torch.float32
    assert b.model.device.type == "cpu" and len(b.generate(text_prompts(texts, 2))) == 2  # dispatched, usable
    make_backend(small, root / "raw")
    assert calls[-1]["device_map"] is None  # one device: the model is moved to the GPU if there is one
    assert calls[-1]["dtype"] is (torch.bfloat16 if torch.cuda.is_available() else torch.float32)


def test_openai_settings_from_params_reach_the_backend(project, api):
    common = dict(
        backend="openai", display="x", model="fake-model", base_url=api.base_url, api_key_env=KEY_ENV
    )
    add_llm(project, "strict", **common, timeout=0.2, max_retries=1, initial_backoff=0.01, max_backoff=0.02)
    add_llm(project, "parallel", **common, concurrency=3)
    add_llm(project, "plain", **common)
    strict, parallel, plain = llm_specs(project, "strict", "parallel", "plain")
    assert (strict.timeout, strict.max_retries, strict.initial_backoff, strict.max_backoff) == (
        0.2,
        1,
        0.01,
        0.02,
    )
    assert strict.device_map is strict.dtype is None and parallel.concurrency == 3
    b = make_backend(strict, strict.model_ref)
    assert (b.timeout, b.max_retries, b.initial_backoff, b.max_backoff, b.concurrency) == (
        0.2,
        1,
        0.01,
        0.02,
        1,
    )
    assert b._client.timeout == 0.2 and b._client.max_retries == 0  # ours are the only retries

    api.reset(default="slow:1.5")  # the timeout and the retry count of params are the ones in force
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match=r"failed after 2 attempts: timed out after 0.2s"):
        b.generate([make_prompt(0)])
    assert len(api.requests) == 2 and time.monotonic() - start < 1.2

    api.reset(default="slow:0.4")  # three requests in flight at once
    gens = make_backend(parallel, parallel.model_ref).generate([make_prompt(i) for i in range(3)])
    starts = sorted(r["time"] for r in api.requests)
    assert len(gens) == 3 and len(starts) == 3 and starts[-1] - starts[0] < 0.3

    defaults = make_backend(plain, plain.model_ref)
    assert (defaults.timeout, defaults.max_retries, defaults.concurrency) == (60.0, 5, 1)
    old = dataclasses.replace(
        strict, **{k: None for k in LLMSpec.TRANSPORT}
    )  # a spec from before these fields
    assert make_backend(old, old.model_ref).timeout == 60.0


def test_cache_is_named_by_what_is_asked_not_how_it_is_reached(project, api):
    add_llm(
        project, "e", backend="openai", display="x", model="m", base_url=api.base_url, api_key_env=KEY_ENV
    )
    (spec,) = llm_specs(project, "e")
    patient = dataclasses.replace(spec, timeout=600.0, max_retries=10, concurrency=8)
    assert patient.folder() != spec.folder() and cache_path(patient) == cache_path(spec)
    assert cache_path(dataclasses.replace(spec, max_new_tokens=7)) != cache_path(spec)
    assert cache_path(dataclasses.replace(spec, shots=2)) != cache_path(spec)
    assert cache_path(spec).name.startswith("e.qac.sa.0shot--")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"backend": "openai", "model": "m", "device_map": "auto"},
            "`llms.bad.device_map`: only for transformers",
        ),
        ({"backend": "openai", "model": "m", "dtype": "float16"}, "`llms.bad.dtype`: only for transformers"),
        ({"backend": "transformers", "hub_id": "a/b", "timeout": 5}, "`llms.bad.timeout`: only for openai"),
        (
            {"backend": "transformers", "hub_id": "a/b", "concurrency": 2},
            "`llms.bad.concurrency`: only for openai",
        ),
        (
            {"backend": "transformers", "hub_id": "a/b", "device_map": "all"},
            "`llms.bad.device_map`: expected null",
        ),
        (
            {"backend": "transformers", "hub_id": "a/b", "device_map": 0},
            "`llms.bad.device_map`: expected str | null",
        ),
        ({"backend": "transformers", "hub_id": "a/b", "dtype": "fp8"}, "`llms.bad.dtype`: expected 'auto'"),
        ({"backend": "openai", "model": "m", "timeout": 0}, "`llms.bad.timeout`: must be > 0"),
        ({"backend": "openai", "model": "m", "timeout": "soon"}, "`llms.bad.timeout`: expected float"),
        ({"backend": "openai", "model": "m", "max_retries": -1}, "`llms.bad.max_retries`: must be >= 0"),
        ({"backend": "openai", "model": "m", "max_retries": 1.5}, "`llms.bad.max_retries`: expected int"),
        ({"backend": "openai", "model": "m", "concurrency": 0}, "`llms.bad.concurrency`: must be >= 1"),
        (
            {"backend": "openai", "model": "m", "initial_backoff": -1},
            "`llms.bad.initial_backoff`: must be >= 0",
        ),
        (
            {"backend": "openai", "model": "m", "initial_backoff": 5, "max_backoff": 1},
            "must be >= initial_backoff",
        ),
    ],
)
def test_llm_run_settings_are_validated(project, entry, message):
    add_llm(project, "bad", display="x", **entry)
    with pytest.raises(ParamError) as err:
        load_registry()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("params/llms.yaml: ") and message in msg


def test_shipped_llms_validate():
    reg = load_registry()
    assert reg.llms["deepseek-r1-distill-llama-70b"].device_map == "auto"  # the paper's DeepSeek runs
    assert reg.llms["tiny-llama"].device_map is None and reg.llms["local-vllm"].timeout == 300
