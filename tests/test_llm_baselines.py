"""The LLM-baseline stage end to end: runner → notebook → an OpenAI-compatible server on 127.0.0.1 → scores.

The API key is set in the environment only; no file the run leaves behind (executed notebook, log, result,
predictions, response cache, runner logs) may contain it. A forced re-run answers from the response cache.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import tiny_profile

from lrl_utils.runner import main

SECRET = "sk-test-4f1c9e7a2b-never-write-me"


class Answers(BaseHTTPRequestHandler):
    """Chat completions that answer every sentiment question `positive`; records the Authorization headers."""

    seen: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Answers.seen.append(self.headers.get("Authorization", ""))
        text = "Positive." if "sentiment" in json.dumps(body).lower() else "I cannot tell."
        message = {"role": "assistant", "content": text}
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    Answers.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_api_baseline_scores_honestly_and_never_writes_the_key(project, server, monkeypatch, capsys):
    project.use_real_notebooks()
    llms = yaml.safe_load((project.root / "params" / "llms.yaml").read_text())
    llms["llms"]["test-api"] = {
        "backend": "openai",
        "display": "test server",
        "model": "test-model",
        "base_url": server,
        "api_key_env": "LRL_TEST_API_KEY",
    }
    (project.root / "params" / "llms.yaml").write_text(yaml.safe_dump(llms))
    monkeypatch.setenv("LRL_TEST_API_KEY", SECRET)
    prof = tiny_profile(
        llm_baselines={"llms": ["test-api"], "tasks": ["sa"], "shots": [0, 2], "max_items": 12}
    )
    project.add_profile("mini", prof)
    from lrl_utils.grid import Grid

    targets = [s.folder() for s in Grid("mini").expand() if s.stage == "llm"]
    assert len(targets) == 2
    args = ["--profile", "mini", *[a for t in targets for a in ("--target", t)]]
    assert main(args) == 0, capsys.readouterr().out
    assert len(Answers.seen) == 24 and set(Answers.seen) == {f"Bearer {SECRET}"}  # the key was used ...

    for folder in targets:
        result = json.loads((project.runs / folder / "result.json").read_text())
        rows = [json.loads(x) for x in (project.runs / folder / "predictions.jsonl").read_text().splitlines()]
        assert len(rows) == 12 and all(r["valid"] and r["pred"] == 1 for r in rows)  # always "positive"
        metrics = result["metrics"]
        assert metrics["invalid_rate"] == 0.0 and metrics["usage_calls"] == 12
        gold = [r["gold"] for r in rows]
        from sklearn.metrics import f1_score

        assert metrics["f1"] == pytest.approx(f1_score(gold, [1] * 12, labels=[0, 1], average="macro"))

    capsys.readouterr()
    assert main([*args, "--force"]) == 0  # a forced re-run answers from the response cache
    assert len(Answers.seen) == 24
    result = json.loads((project.runs / targets[0] / "result.json").read_text())
    assert result["metrics"]["usage_cached"] == 12 and result["metrics"]["usage_calls"] == 0

    leaked = [
        str(path)
        for path in project.root.rglob("*")
        if path.is_file() and not path.is_symlink() and SECRET.encode() in path.read_bytes()
    ]
    assert not leaked  # ... and written nowhere
    assert (project.runs / "_llm_cache").exists()
