"""Grid expansion, run-spec hashing and the dry-run listing."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

from conftest import tiny_profile

from lrl_utils.grid import Grid
from lrl_utils.runner import main
from lrl_utils.specs import SPEC_CLASSES, AdaptSpec


def test_paper_grid_counts():
    specs = Grid("paper").expand()
    counts = Counter(s.stage for s in specs)
    # 30 languages × 2 sources; × 2 models × 3 adapters; pppl: base + 6 configs; tc: 7 configs × 3 seeds
    assert counts == {"preprocess": 60, "adapt": 360, "pppl": 420, "finetune": 1260, "report": 2}
    assert len({s.folder() for s in specs}) == len(specs) == 2102
    adapt = next(s for s in specs if s.stage == "adapt" and s.source == "glotcc")
    assert (
        adapt.train.max_steps == 100_000
        and adapt.train.batch_size == 16
        and adapt.train.learning_rate == 1e-4
    )
    assert adapt.model_ref in ("google-bert/bert-base-multilingual-cased", "FacebookAI/xlm-roberta-base")


def test_dry_run_lists_runs_and_ends_with_total(capsys):
    assert main(["--profile", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "2102 runs"
    assert "   finetune: 1260" in out
    assert sum(line.startswith(("todo", "done")) for line in out) == 2102


def test_dependencies_come_first_and_exist():
    specs = Grid("demo").expand()
    seen = set()
    for s in specs:
        for dep in s.deps():
            assert dep in seen, f"{s.folder()} needs {dep} which is not earlier in the grid"
        seen.add(s.folder())


def test_hash_is_stable_and_sensitive():
    g = Grid("demo")
    a = g.adapt("tiny-xlmr", "qac", "glotcc", "lora")
    assert a.digest() == Grid("demo").adapt("tiny-xlmr", "qac", "glotcc", "lora").digest()
    assert len(a.digest()) == 12 and a.folder().endswith("--" + a.digest())
    changed = dataclasses.replace(a, train=dataclasses.replace(a.train, max_steps=a.train.max_steps + 1))
    assert changed.digest() != a.digest()
    # JSON round trip gives the same spec and hash
    back = SPEC_CLASSES["adapt"].from_json(a.canonical())
    assert back == a and back.digest() == a.digest()
    assert json.loads(a.canonical())["stage"] == "adapt"


def test_upstream_change_cascades(project):
    project.add_profile("t1", tiny_profile())
    prof = tiny_profile()
    prof["adapt"]["glotcc"]["max_steps"] = 11
    project.add_profile("t2", prof)
    g1, g2 = Grid("t1"), Grid("t2")
    assert (
        g1.pppl("tiny-xlmr", "qac").digest() == g2.pppl("tiny-xlmr", "qac").digest()
    )  # base model: unchanged
    assert (
        g1.pppl("tiny-xlmr", "qac", "glotcc", "seq_bn").digest()
        != g2.pppl("tiny-xlmr", "qac", "glotcc", "seq_bn").digest()
    )
    assert (
        g1.finetune("tiny-xlmr", "qac", "tc", "glotcc", "seq_bn").adapter_run
        != g2.finetune("tiny-xlmr", "qac", "tc", "glotcc", "seq_bn").adapter_run
    )


def test_spec_paths_are_relative():
    for s in Grid("demo").expand():
        text = s.canonical()
        assert "/work/" not in text and "/root/" not in text and "/tmp/" not in text


def test_demo_grid_shape():
    g = Grid("demo")
    counts = Counter(s.stage for s in g.expand())
    # 2 languages adapted × 2 models × 3 adapters × 2 sources = 24; preprocess: qab, qac × 2 + qaa glotcc
    assert counts["adapt"] == 24 and counts["base_model"] == 2 and counts["preprocess"] == 5
    assert counts["pppl"] == 2 * 2 * 7 and counts["finetune"] == 2 * 2 * 7
    assert isinstance(g.adapt("tiny-mbert", "qab", "conceptnet", "seq_bn"), AdaptSpec)
    assert g.adapt("tiny-mbert", "qab", "conceptnet", "seq_bn").adapter_overrides == {"reduction_factor": 8}
