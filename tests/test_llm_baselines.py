"""The LLM-baseline stage end to end: runner → notebook → an OpenAI-compatible server on 127.0.0.1 → scores.

The server is the fake of test_llm_backends, answering with a mix of labels, entity lists and unparseable text.
The API key is set in the environment only; no file the runs leave behind (executed notebooks, logs, results,
predictions, response cache, runner logs, failed runs), no console output and no error message may contain it,
also when the server rejects the key and quotes it back. Every saved metric is recomputed from the saved
predictions with scikit-learn / seqeval. A run killed mid-generation resumes without asking twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import REPO, tiny_profile
from seqeval.metrics import f1_score as seq_f1
from seqeval.metrics import precision_score as seq_precision
from seqeval.metrics import recall_score as seq_recall
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, f1_score
from test_llm_backends import FakeAPI, make_handler

from lrl_utils.config import paths
from lrl_utils.llm.backends import LLMRequestError
from lrl_utils.llm.baselines import cache_path, load_items, run_baseline
from lrl_utils.llm.prompts import build_prompts, entities_from_tags
from lrl_utils.orchestration.runner import main

SECRET = "sk-test-4f1c9e7a2b-never-write-me"
KEY_ENV = "LRL_TEST_API_KEY"
NOT_IN_TEXT = "Zzyzx"  # an entity the fake server names that no sentence contains: dropped by the parser


def leaks(text: str | bytes) -> bool:
    """Whether `text` holds the key, or its first or last 10 characters (a key cut short or masked in part)."""
    pieces = (SECRET, SECRET[:10], SECRET[-10:])
    return any((p.encode() if isinstance(text, bytes) else p) in text for p in pieces)


def make_reply(gold: dict[str, list[dict]] | None = None):
    """The fake LLM: deterministic per question. Sentiment: labels, or (one in three) no parsable answer. NER
    (`gold`: sentence → its entities): one in four unparseable; else the gold entities, the gold spans with the
    wrong types, or guessed spans; one in three valid answers also names an entity that is not in the sentence."""

    def reply(question: str) -> str:
        h = int(hashlib.sha256(question.encode()).hexdigest(), 16)
        if "Sentence: " not in question:
            return (
                "Positive.",
                "positive",
                "Negative",
                "negative.",
                "I cannot tell.",
                "positive or negative",
            )[h % 6]
        sentence = question.rsplit("Sentence: ", 1)[1]  # the query (the chat query of params/prompts.yaml)
        tokens, right = sentence.split(), (gold or {}).get(sentence, [])
        if h % 4 == 0:
            return "Sorry, I cannot help with that."
        if h % 4 == 1:
            entities = list(right)
        elif h % 4 == 2:
            swap = {"PER": "ORG", "ORG": "LOC", "LOC": "PER"}
            entities = [{"text": e["text"], "type": swap[e["type"]]} for e in right]
        else:
            entities = [{"text": tokens[0], "type": "PER"}, {"text": " ".join(tokens[2:4]), "type": "LOC"}]
        if h % 3 == 0:
            entities.append({"text": NOT_IN_TEXT, "type": "ORG"})
        return "```json\n" + json.dumps(entities, ensure_ascii=False) + "\n```"

    return reply


reply = make_reply()


def ner_gold(spec) -> dict[str, list[dict]]:
    """Sentence (tokens joined by spaces, as the prompt shows it) → gold entities, for the fake LLM."""
    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.orchestration.notebook import ensure_world

    ensure_world(spec, Grid("mini"))
    test, _, _ = load_items("ner", paths.resolve(spec.dataset), spec.flores_code, spec.language)
    return {" ".join(i["tokens"]): entities_from_tags(i["tokens"], i["ner_tags"]) for i in test}


@pytest.fixture
def fake(monkeypatch):
    api = FakeAPI()
    api.reset(reply=reply)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(api))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    monkeypatch.setenv(KEY_ENV, SECRET)
    yield api
    httpd.shutdown()
    httpd.server_close()


def register(project, api: FakeAPI, name: str, model: str, **settings) -> None:
    """Add an LLM behind the fake server to the project's params/llms.yaml."""
    path = project.root / "params" / "llms.yaml"
    llms = yaml.safe_load(path.read_text())
    entry = {
        "backend": "openai",
        "display": name,
        "model": model,
        "base_url": api.base_url,
        "api_key_env": KEY_ENV,
    }
    llms["llms"][name] = {**entry, **settings}
    path.write_text(yaml.safe_dump(llms))


def llm_specs(profile: str) -> dict:
    """The LLM runs of a profile, by (llm, task, shots)."""
    from lrl_utils.orchestration.grid import Grid

    grid = Grid(profile)
    b = grid.profile.llm_baselines
    lang = grid.profile.languages[0]
    return {(m, t, k): grid.llm(m, lang, t, k) for m in b.llms for t in b.tasks for k in b.shots}


# --------------------------------------------------------------------------------------------------
# Independent recomputation of the saved metrics


def recompute(task: str, rows: list[dict]) -> dict[str, float]:
    """Every metric of an LLM run, from its saved predictions (predictions.jsonl), with sklearn / seqeval."""
    n = len(rows)
    valid = [r["valid"] for r in rows]
    out = {"n": n, "n_valid": sum(valid), "invalid_rate": 1 - sum(valid) / n}
    out |= {
        "usage_calls": sum(not r["cached"] for r in rows),
        "usage_cached": sum(r["cached"] for r in rows),
        "usage_prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "usage_completion_tokens": sum(r["completion_tokens"] for r in rows),
    }
    if task == "ner":
        gold = [r["gold"] for r in rows]
        pred = [r["pred"] if r["valid"] else ["O"] * len(r["gold"]) for r in rows]
        assert all(r["pred"] == ["O"] * len(r["gold"]) for r in rows if not r["valid"])
        vg, vp = [r["gold"] for r in rows if r["valid"]], [r["pred"] for r in rows if r["valid"]]
        out |= {
            "f1": seq_f1(gold, pred),
            "f1_strict": seq_f1(gold, pred, mode="strict", scheme=IOB2),
            "precision": seq_precision(gold, pred),
            "recall": seq_recall(gold, pred),
            "f1_paper_compat": seq_f1(vg, vp) if vg else 0.0,
            # from the answers themselves: the server's one entity that no sentence contains
            "dropped_entities": sum(r["answer"].count(NOT_IN_TEXT) for r in rows if r["valid"]),
        }
        return out
    labels = [0, 1] if task == "sa" else list(range(7))
    gold = [r["gold"] for r in rows]
    pred = [r["pred"] if r["valid"] else -1 for r in rows]  # an invalid answer: wrong for its gold class
    vg, vp = [r["gold"] for r in rows if r["valid"]], [r["pred"] for r in rows if r["valid"]]
    out |= {
        "f1": f1_score(gold, pred, labels=labels, average="macro", zero_division=0),
        "accuracy": accuracy_score(gold, pred),
        "f1_paper_compat": f1_score(vg, vp, labels=labels, average="macro", zero_division=0) if vg else 0.0,
    }
    return out


def check_saved_metrics(run: Path, task: str) -> tuple[dict, list[dict]]:
    """Recompute every numeric metric of result.json from predictions.jsonl; none may go unchecked."""
    metrics = json.loads((run / "result.json").read_text())["metrics"]
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    again = recompute(task, rows)
    numeric = {k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric - set(again) == set(), "saved metrics without a recomputation"
    for key in numeric:
        assert metrics[key] == pytest.approx(again[key], abs=1e-12), key
    assert all(r["completion_tokens"] == len(r["answer"].split()) for r in rows)  # the server's usage rule
    return metrics, rows


# --------------------------------------------------------------------------------------------------
# End to end through the runner


@pytest.mark.slow
def test_api_baselines_score_honestly_and_never_leak_the_key(project, fake, capfd):
    project.use_real_notebooks()
    register(project, fake, "test-api", "test-model", max_retries=0)
    register(project, fake, "test-api-bad", "rejected-model", max_retries=0)  # its key is refused
    llm_baselines = {
        "llms": ["test-api", "test-api-bad"],
        "tasks": ["sa", "ner"],
        "shots": [0, 2],
        "max_items": 12,
    }
    project.add_profile("mini", tiny_profile(llm_baselines=llm_baselines))
    specs = llm_specs("mini")
    gold = ner_gold(specs["test-api", "ner", 2])
    fake.reset(
        reply=make_reply(gold), by_model={"rejected-model": "401-echo"}
    )  # the key quoted back in the error
    good = {(t, k): specs["test-api", t, k] for t, k in (("sa", 0), ("sa", 2), ("ner", 2))}
    bad = specs["test-api-bad", "sa", 0]
    targets = [s.folder() for s in (*good.values(), bad)]
    console = []

    assert main(["--profile", "mini", *[a for t in targets for a in ("--target", t)]]) == 1  # one run failed
    console.append(capfd.readouterr())
    answered = list(fake.answered)
    assert len(answered) == 36 and len(fake.requests) == 37  # 12 per good run, 1 for the refused key
    assert {r["auth"] for r in fake.requests} == {f"Bearer {SECRET}"}  # the key was used ...

    first = {}
    for (task, shots), spec in good.items():
        metrics, rows = check_saved_metrics(project.runs / spec.folder(), task)
        first[task, shots] = metrics
        assert len(rows) == 12 and metrics["usage_calls"] == 12 and metrics["usage_cached"] == 0
        assert 0 < metrics["invalid_rate"] < 1 and 0 < metrics["f1"] < metrics["f1_paper_compat"] < 1
    ner = first["ner", 2]
    assert ner["dropped_entities"] > 0 and ner["precision"] != ner["recall"]
    # usage as the server reported it, call by call
    for key in ("prompt_tokens", "completion_tokens"):
        assert sum(m[f"usage_{key}"] for m in first.values()) == sum(a[key] for a in answered)

    assert main(["--profile", "mini", "--target", good["sa", 0].folder(), "--force"]) == 0  # from the cache
    console.append(capfd.readouterr())
    assert len(fake.requests) == 37
    metrics, rows = check_saved_metrics(project.runs / good["sa", 0].folder(), "sa")
    assert metrics["usage_cached"] == 12 and metrics["usage_calls"] == 0 and all(r["cached"] for r in rows)

    def scores(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in ("usage_calls", "usage_cached")}

    assert scores(metrics) == scores(first["sa", 0])

    # The refused run: its error is shown, with the key redacted.
    failed = project.runs / "_failed" / bad.folder()
    assert not (project.runs / bad.folder()).exists() and not (failed / "result.json").exists()
    cells = json.loads((failed / "notebook.ipynb").read_text())["cells"]
    (error,) = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert error["ename"] == "LLMRequestError" and "HTTP 401" in error["evalue"] and "***" in error["evalue"]
    shown = [json.dumps(error)]
    with pytest.raises(LLMRequestError) as err:  # the same failure in this process: message and traceback
        run_baseline(bad, bad.model_ref, paths.resolve(bad.dataset), progress=False)
    shown.append("".join(traceback.format_exception(err.value)) + repr(err.value))
    assert "HTTP 401" in shown[-1] and "***" in shown[-1]
    assert SECRET in json.dumps(fake.requests[-1])  # the server saw the key, and quoted it back

    # ... and the key is written, printed and shown nowhere.
    assert not [i for i, text in enumerate(shown) if leaks(text)]
    printed = "".join(c.out + c.err for c in console)
    assert "test-api-bad" in printed and not leaks(printed)
    written = [p for p in project.root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "log.txt" for p in written) and any("_llm_cache" in p.parts for p in written)
    assert [str(p) for p in written if leaks(p.read_bytes())] == []


# --------------------------------------------------------------------------------------------------
# Kill mid-run, resume


_GENERATE = """
import sys
from lrl_utils.llm import baselines as llm_baselines
from lrl_utils.config.specs import LLMSpec

spec = LLMSpec.from_json(sys.argv[1])
llm_baselines.run_baseline(spec, spec.model_ref, sys.argv[2], progress=False)
"""


def cached_items(path: Path) -> list[str]:
    """The item ids of the complete records of a response cache (a line torn by the kill excluded)."""
    if not path.exists():
        return []
    return [json.loads(line)["item_id"] for line in path.read_text().split("\n")[:-1] if line.strip()]


@pytest.mark.slow
def test_killed_run_resumes_without_asking_twice(project, fake, monkeypatch, tmp_path):
    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.orchestration.notebook import ensure_world

    register(project, fake, "test-api", "test-model", max_retries=0, timeout=30)
    llm_baselines = {"llms": ["test-api"], "tasks": ["sa"], "shots": [2], "max_items": 12}
    project.add_profile("mini", tiny_profile(llm_baselines=llm_baselines))
    (spec,) = llm_specs("mini").values()
    ensure_world(spec, Grid("mini"))
    location = str(paths.resolve(spec.dataset))
    test, train, labels = load_items(spec.task, location, spec.flores_code, spec.language)
    prompts = build_prompts(spec.task, test[:12], train, spec.template, spec.shots, spec.shot_seed, labels)
    item_of = {p.messages[-1]["content"]: p.item_id for p in prompts}
    assert len(item_of) == 12

    def asked() -> list[str]:
        return [item_of[r["body"]["messages"][-1]["content"]] for r in fake.requests]

    # 1. Generation in a child process against a slow server, SIGKILLed once 4 responses are cached.
    fake.reset(reply=reply, default="slow:0.3")
    cache = cache_path(spec)
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", _GENERATE, spec.canonical(), location],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while len(cached_items(cache)) < 4:
                assert child.poll() is None, (tmp_path / "child.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            child.send_signal(signal.SIGKILL)  # mid-run (or, when the test failed, whatever it was doing)
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    cached, first = cached_items(cache), asked()
    assert 4 <= len(cached) < 12 and len(set(cached)) == len(cached)
    assert (
        first[: len(cached)] == cached and len(first) - len(cached) <= 1
    )  # at most one answer lost in flight

    # 2. The rerun asks for exactly the items not cached, each once.
    fake.reset(reply=reply)
    resumed = run_baseline(spec, spec.model_ref, location, progress=False)
    again = asked()
    assert sorted(again) == sorted(set(item_of.values()) - set(cached)) and len(again) == len(set(again))
    assert [r["cached"] for r in resumed["rows"]] == [r["id"] in cached for r in resumed["rows"]]
    assert (resumed["usage"]["calls"], resumed["usage"]["cached"]) == (12 - len(cached), len(cached))

    # 3. The same scores as a run never interrupted (its own, empty response cache).
    monkeypatch.setenv("LRL_RUNS", str(tmp_path / "fresh-runs"))
    fake.reset(reply=reply)
    fresh = run_baseline(spec, spec.model_ref, location, progress=False)
    assert len(fake.requests) == 12 and cache_path(spec) != cache
    assert resumed["metrics"] == fresh["metrics"] and 0 < fresh["metrics"]["invalid_rate"] < 1

    def drop_cached(rows):
        return [{k: v for k, v in r.items() if k != "cached"} for r in rows]

    assert drop_cached(resumed["rows"]) == drop_cached(fresh["rows"])
    for key in ("prompt_tokens", "completion_tokens"):
        assert resumed["usage"][key] == fresh["usage"][key]
