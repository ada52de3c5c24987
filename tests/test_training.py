"""`train_lm` on accelerate: exact resume after a SIGKILL, two `accelerate launch` processes, NaN / OOM reports,
the settings check, TensorBoard scalars, the target-position objectives against the models' own losses, and
gradient accumulation. Tiny models on CPU."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch
from conftest import free_port, kill_tree, save_tiny_base, toy_corpus
from transformers import LlamaConfig, LlamaForCausalLM

from lrl_utils.adapters import heads as lm_heads
from lrl_utils.adapters.heads import CausalLMObjective, MaskedLMObjective, set_head_path
from lrl_utils.adapters.methods import adapter_parameters, add_language_adapter, load_mlm_model
from lrl_utils.config.train_settings import TrainConfig
from lrl_utils.training import checkpoints
from lrl_utils.training import loop as training
from lrl_utils.training.loop import train_lm

TESTS = Path(__file__).resolve().parent
TRAIN, VAL = toy_corpus(200, 0), toy_corpus(32, 1)
OVERRIDES = {"reduction_factor": 4}  # hidden 32 -> bottleneck 8
VARIANTS = ("seq_bn", "full", "mosa")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return save_tiny_base("bert", tmp_path_factory.mktemp("base-bert"), TRAIN, bias_std=0.5)


@pytest.fixture(scope="module")
def xlmr_dir(tmp_path_factory):
    return save_tiny_base("xlm-roberta", tmp_path_factory.mktemp("base-xlmr"), TRAIN, bias_std=0.5)


def build(base_dir, variant: str):
    """The tiny model of `variant` (an adapter method, or `full`: every weight trains), built deterministically."""
    model, tokenizer = load_mlm_model(base_dir)
    torch.manual_seed(0)  # the adapter's initial weights come from the global RNG
    if variant == "full":
        model.requires_grad_(True)
    else:
        add_language_adapter(model, variant, overrides=OVERRIDES)
    return model, tokenizer


def resume_config(steps: int) -> TrainConfig:
    return TrainConfig(
        max_steps=steps,
        batch_size=8,
        learning_rate=5e-3,
        max_length=32,
        eval_every=10,
        checkpoint_every=5,
        log_every=5,
        mixed_precision="no",
    )


def train_variant(base_dir, variant: str, steps: int, checkpoint_dir=None):
    """One run of the resume test; also what the child processes run (they import this module)."""
    model, tokenizer = build(base_dir, variant)
    history = train_lm(
        model, tokenizer, TRAIN, VAL, resume_config(steps), progress=False, checkpoint_dir=checkpoint_dir
    )
    return model, history


def fork_trainers(base_dir: str, steps: int, folders: dict[str, str]) -> None:
    """Run in a fresh interpreter (the child of the resume test): import once, fork one trainer per variant, print
    their pids; after a line on stdin (the test has sent its kills: until then an ended trainer stays a zombie, so
    its pid is not reused), reap them and print how each ended (`os.waitpid` statuses). JSON lines."""
    pids = {}
    for variant, folder in folders.items():
        pid = os.fork()
        if pid == 0:  # a trainer: the test kills it mid-run
            try:
                train_variant(base_dir, variant, steps, folder)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        pids[variant] = pid
    print(json.dumps(pids), flush=True)
    sys.stdin.readline()
    print(json.dumps({variant: os.waitpid(pid, 0)[1] for variant, pid in pids.items()}), flush=True)


CHILD = (  # one thread, no OpenMP pool yet: forking is safe
    "import json, sys, torch; torch.set_num_threads(1); sys.path.insert(0, sys.argv[1]); import test_training as t; "
    "t.fork_trainers(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))"
)


def child_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def assert_same(a, b, where: str = "") -> None:
    """Exact equality of nested dicts / lists / tensors (tensors with torch.equal)."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        assert same, f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def count_training_forwards(monkeypatch) -> list[int]:
    """Count the objective's forward calls in training mode (evaluation runs it in eval mode)."""
    calls = [0]
    original = MaskedLMObjective.forward

    def counted(self, *args, **kwargs):
        calls[0] += self.training
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MaskedLMObjective, "forward", counted)
    return calls


# --------------------------------------------------------------------------------------------------------------
# 1. resume after SIGKILL


# when to kill each trainer: as soon as its first best.pt exists (step 10, written just before last.pt: the kill
# leaves last.pt at step 5 and a best.pt ahead of it), as soon as last.pt exists (step 5, no best.pt yet), or a
# little after best.pt (somewhere between checkpoints)
KILL_WHEN = {
    "seq_bn": (checkpoints.BEST, 0.0),
    "full": (checkpoints.LAST, 0.0),
    "mosa": (checkpoints.BEST, 0.03),
}


def kill_trainers_mid_run(base_dir, tmp_path, variants, steps: int) -> dict[str, Path]:
    """Train `variants` in processes forked by a fresh interpreter and SIGKILL each at its `KILL_WHEN` point;
    return the checkpoint folders of those killed before they finished (the others are to retry with more steps)."""
    folders = {v: tmp_path / f"ckpt-{v}-{steps}" for v in variants}
    log_path = tmp_path / f"child-{steps}.log"
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(TESTS), str(base_dir), str(steps), json.dumps(
                {v: str(f) for v, f in folders.items()})],
            cwd=TESTS.parent, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    pids: dict[str, int] = {}
    pending = set(variants)
    try:
        line = (
            child.stdout.readline()
        )  # the trainers' pids, once the child has imported everything and forked
        assert line, f"the child failed to start:\n{log_path.read_text()}"
        pids = json.loads(line)
        deadline, seen = time.monotonic() + 180, {}
        while pending:
            for variant in sorted(pending):
                name, delay = KILL_WHEN[variant]
                if variant not in seen and (folders[variant] / name).exists():
                    seen[variant] = time.monotonic()
                if variant in seen and time.monotonic() >= seen[variant] + delay:
                    os.kill(pids[variant], signal.SIGKILL)  # if it has ended already, it is a zombie: a no-op
                    pending.discard(variant)
            assert child.poll() is None, f"the child ended early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"trainers {sorted(pending)} wrote no checkpoint in time"
            time.sleep(0.002)
        child.stdin.write("reap\n")
        child.stdin.flush()
        statuses = json.loads(child.stdout.readline() or "null")
        assert child.wait(timeout=60) == 0 and statuses, log_path.read_text()
    finally:
        if child.poll() is None:  # a failure above: end what this test started
            for variant in pending & set(pids):
                os.kill(pids[variant], signal.SIGKILL)
            child.kill()
            child.wait()
    killed = {}
    for variant, status in statuses.items():
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            killed[variant] = folders[variant]
        else:  # finished before the kill (exit 0) or failed
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
                variant,
                status,
                log_path.read_text(),
            )
    return killed


def test_a_killed_run_resumes_to_the_uninterrupted_result(bert_dir, tmp_path, monkeypatch):
    """Adapter (seq_bn), full model and MoSA: a training process SIGKILLed mid-run, resumed (here) from its
    checkpoint folder, ends exactly where an uninterrupted run ends: weights, optimizer, RNG, history, best."""
    todo, steps, killed = list(VARIANTS), 120, {}
    for _ in range(3):  # a trainer that finished before the kill is retried with 4x the steps
        for variant, folder in kill_trainers_mid_run(bert_dir, tmp_path, todo, steps).items():
            killed[variant] = (folder, steps)
        todo = [v for v in todo if v not in killed]
        if not todo:
            break
        steps *= 4
    assert not todo, (
        f"{todo}: the trainers finished before they could be killed, even with {steps // 4} steps"
    )

    for variant, (folder, steps) in killed.items():
        saved = checkpoints.load(folder / checkpoints.LAST)
        assert saved is not None, f"{variant}: no last.pt"
        saved_step = saved["state"]["step"]
        assert 0 < saved_step < steps, (variant, saved_step)

        reference_model, reference = train_variant(
            bert_dir, variant, steps, tmp_path / f"reference-{variant}"
        )
        forwards = count_training_forwards(monkeypatch)
        resumed_model, resumed = train_variant(bert_dir, variant, steps, folder)
        monkeypatch.undo()
        assert forwards[0] == steps - saved_step, (variant, forwards[0], saved_step)  # really resumed
        # its time counts the killed segment up to the checkpoint too (tokens/s of the whole run, not the last part)
        assert saved["seconds"] > 0 and resumed["seconds"] >= saved["seconds"], (variant, saved["seconds"])

        final = checkpoints.trainable_state(resumed_model)
        assert_same(checkpoints.trainable_state(reference_model), final, variant)
        untrained = checkpoints.trainable_state(build(bert_dir, variant)[0])
        assert not all(torch.equal(final[n], untrained[n]) for n in final), f"{variant}: nothing trained"
        assert len(reference["val_loss"]) == steps // 10 + 1
        for key in (
            "val_loss",
            "train_loss",
            "learning_rate",
            "best_step",
            "best_val_loss",
            "steps",
            "tokens_seen",
        ):
            assert resumed[key] == reference[key], (variant, key)

        # the final checkpoints agree too: weights, optimizer moments, scheduler, loop state, dropout RNG
        last_ref = checkpoints.load(tmp_path / f"reference-{variant}" / checkpoints.LAST)
        last_res = checkpoints.load(folder / checkpoints.LAST)
        for key in ("settings", "state", "history", "weights", "optimizer", "scheduler"):
            assert_same(last_ref[key], last_res[key], f"{variant}.{key}")
        assert_same(last_ref["rng"][0]["torch"], last_res["rng"][0]["torch"], f"{variant}.rng")
        assert_same(last_ref["rng"][0]["modules"], last_res["rng"][0]["modules"], f"{variant}.rng")
        assert bool(last_res["rng"][0]["modules"]) == (variant == "mosa")  # MoSA's module draws are saved
        assert_same(
            checkpoints.load(tmp_path / f"reference-{variant}" / checkpoints.BEST),
            checkpoints.load(folder / checkpoints.BEST),
            f"{variant}.best",
        )


# --------------------------------------------------------------------------------------------------------------
# 2. accelerate launch, two CPU processes

LAUNCHED = """
import json, sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
import test_training as t
from accelerate import PartialState

from lrl_utils.training import checkpoints

out = Path(sys.argv[3])
model, tokenizer = t.build(sys.argv[2], "seq_bn")
config = t.TrainConfig(
    max_steps=6, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=3, log_every=1, mixed_precision="no"
)
# five validation texts: one validation batch, so the second process scores none
history = t.train_lm(
    model, tokenizer, t.TRAIN, t.VAL[:5], config, progress=False, checkpoint_dir=out / "ckpt"
)
rank = PartialState().process_index
torch.save(checkpoints.trainable_state(model), out / f"weights-{rank}.pt")
(out / f"history-{rank}.json").write_text(json.dumps(history))
"""


def test_accelerate_launch_with_two_cpu_processes(bert_dir, tmp_path):
    """`accelerate launch --cpu --num_processes 2` starts a single process in accelerate 1.15 (multi-CPU goes
    through mpirun); torchrun's launcher (`--multi_gpu`) with ACCELERATE_USE_CPU starts two gloo processes."""
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(
        HOME=str(home),
        HF_HOME=str(home / "hf"),
        XDG_CACHE_HOME=str(home / "cache"),
        ACCELERATE_USE_CPU="true",
    )
    command = [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(script), str(TESTS), str(bert_dir), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)  # the workers run in sessions of their own: a process-group kill misses them
        output, _ = proc.communicate(timeout=30)
        pytest.fail(
            f"accelerate launch hung (a collective that one process never joined?):\n{output[-4000:]}"
        )
    assert proc.returncode == 0, output[-4000:]

    histories = [json.loads((tmp_path / f"history-{r}.json").read_text()) for r in (0, 1)]
    weights = [torch.load(tmp_path / f"weights-{r}.pt") for r in (0, 1)]
    assert [h["num_processes"] for h in histories] == [2, 2]
    assert histories[0]["val_loss"] == histories[1]["val_loss"] and histories[0]["steps"] == 6
    assert all(math.isfinite(loss) for _, loss in histories[0]["train_loss"] + histories[0]["val_loss"])
    assert len(histories[0]["train_loss"]) == 6
    assert_same(weights[0], weights[1], "rank 0 vs rank 1")
    untrained = checkpoints.trainable_state(build(bert_dir, "seq_bn")[0])
    assert weights[0].keys() == untrained.keys()
    assert not all(torch.equal(weights[0][n], untrained[n]) for n in untrained)

    # every process's RNG is in the checkpoint; the step-0 validation loss (one batch, scored by rank 0 alone,
    # summed over both) is that of a single process
    saved = checkpoints.load(tmp_path / "ckpt" / checkpoints.LAST)
    assert saved["settings"]["num_processes"] == 2 and len(saved["rng"]) == 2 and saved["state"]["step"] == 6
    model, tokenizer = build(bert_dir, "seq_bn")
    config = TrainConfig(max_steps=1, batch_size=8, max_length=32, eval_every=3, mixed_precision="no")
    single = train_lm(model, tokenizer, TRAIN, VAL[:5], config, progress=False)
    assert histories[0]["val_loss"][0] == pytest.approx(single["val_loss"][0], rel=1e-12)


# --------------------------------------------------------------------------------------------------------------
# 3.-6. failures, settings, TensorBoard


def test_nan_stops_naming_the_step_and_the_last_good_checkpoint(bert_dir, tmp_path):
    model, tokenizer = build(bert_dir, "full")
    config = TrainConfig(
        max_steps=20, batch_size=8, learning_rate=1e30, max_length=32, eval_every=10, checkpoint_every=1
    )
    with pytest.raises(FloatingPointError) as error:
        train_lm(model, tokenizer, TRAIN, VAL, config, progress=False, checkpoint_dir=tmp_path)
    message = str(error.value)
    failed = int(re.search(r"at step (\d+)", message).group(1))
    assert 1 < failed <= 20, message
    last = tmp_path / checkpoints.LAST
    assert f"{last} (step {failed - 1})" in message, message
    saved = checkpoints.load(last)  # still loadable, from the step before the failure
    assert saved["state"]["step"] == failed - 1
    assert all(math.isfinite(loss) for _, loss in saved["history"]["val_loss"])

    # without a checkpoint folder the message says so
    model, tokenizer = build(bert_dir, "full")
    with pytest.raises(
        FloatingPointError, match=r"at step \d+; stopped: no checkpoint was written \(no checkp"
    ):
        train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)


def test_nan_gradient_norm_stops(bert_dir, monkeypatch):
    """A finite loss with a non-finite gradient norm stops too (the clip reports it)."""
    from accelerate import Accelerator

    monkeypatch.setattr(Accelerator, "clip_grad_norm_", lambda self, params, max_norm: torch.tensor(math.nan))
    model, tokenizer = build(bert_dir, "seq_bn")
    config = TrainConfig(max_steps=3, batch_size=8, max_length=32, eval_every=3, mixed_precision="no")
    with pytest.raises(
        FloatingPointError, match=r"gradient norm became nan at step 1; stopped: no checkpoint"
    ):
        train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)


def test_out_of_memory_names_the_batch_and_settings(bert_dir, monkeypatch):
    shapes = []

    def oom(self, input_ids, attention_mask, labels, **extra):
        if not self.training:  # the step-0 evaluation passes
            return original(self, input_ids, attention_mask, labels, **extra)
        shapes.append(tuple(input_ids.shape))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    original = lm_heads.MaskedLMObjective.forward
    monkeypatch.setattr(lm_heads.MaskedLMObjective, "forward", oom)
    model, tokenizer = build(bert_dir, "seq_bn")
    config = TrainConfig(
        max_steps=3, batch_size=8, max_length=24, gradient_accumulation_steps=2, eval_every=3
    )
    with pytest.raises(RuntimeError) as error:
        train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert type(error.value) is RuntimeError and isinstance(error.value.__cause__, torch.OutOfMemoryError)
    [(rows, width)] = shapes
    assert rows == 8 and 4 < width <= 24
    message = str(error.value)
    assert f"at step 1 on a batch of {rows} sequences x {width} tokens" in message, message
    assert (
        "batch_size=8" in message
        and "max_length=24" in message
        and "gradient_accumulation_steps=2" in message
    )


def test_resuming_with_other_settings_names_the_difference(bert_dir, tmp_path):
    config = TrainConfig(max_steps=4, batch_size=8, max_length=32, eval_every=2, mixed_precision="no")
    model, tokenizer = build(bert_dir, "seq_bn")
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False, checkpoint_dir=tmp_path)
    last = tmp_path / checkpoints.LAST
    before = last.read_bytes()
    for key, value in [("learning_rate", 2e-4), ("max_steps", 8), ("batch_size", 4), ("seed", 1)]:
        changed = TrainConfig(**{**config.to_dict(), key: value})
        model, tokenizer = build(bert_dir, "seq_bn")
        with pytest.raises(
            ValueError, match=rf"written with {key}=.*but this run has {key}={value!r}"
        ) as error:
            train_lm(model, tokenizer, TRAIN, VAL, changed, progress=False, checkpoint_dir=tmp_path)
        assert str(last) in str(error.value)
    assert last.read_bytes() == before  # refused before writing anything

    # the same settings resume (here: at the end, nothing left to train) with the saved history
    model, tokenizer = build(bert_dir, "seq_bn")
    again = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False, checkpoint_dir=tmp_path)
    assert again["val_loss"] == history["val_loss"] and again["steps"] == 4


def test_tensorboard_scalars(bert_dir, tmp_path, monkeypatch):
    """The scalars are written; a resumed run replaces what the interrupted one logged after its checkpoint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    save_last = checkpoints.save_last

    def keep_step_3(folder, checkpoint):
        path = save_last(folder, checkpoint)
        if checkpoint["state"]["step"] == 3:
            (folder / "step-3.pt").write_bytes(path.read_bytes())
        return path

    monkeypatch.setattr(checkpoints, "save_last", keep_step_3)
    config = TrainConfig(
        max_steps=6,
        batch_size=8,
        max_length=32,
        eval_every=3,
        log_every=1,
        checkpoint_every=3,
        mixed_precision="no",
    )
    log_dir, folder = tmp_path / "tb", tmp_path / "ckpt"
    model, tokenizer = build(bert_dir, "seq_bn")
    history = train_lm(
        model, tokenizer, TRAIN, VAL, config, progress=False, checkpoint_dir=folder, log_dir=log_dir
    )
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    # as if killed after step 6 was logged but before its checkpoint: resume from step 3, log steps 4-6 again
    (folder / "step-3.pt").replace(folder / checkpoints.LAST)
    model, tokenizer = build(bert_dir, "seq_bn")
    again = train_lm(
        model, tokenizer, TRAIN, VAL, config, progress=False, checkpoint_dir=folder, log_dir=log_dir
    )
    assert (
        again["train_loss"] == history["train_loss"] and len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    )

    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert {"train/loss", "val/loss", "train/learning_rate"} <= set(events.Tags()["scalars"])
    train = [(e.step, e.value) for e in events.Scalars("train/loss")]
    val = [(e.step, e.value) for e in events.Scalars("val/loss")]
    assert [s for s, _ in train] == [1, 2, 3, 4, 5, 6] and [s for s, _ in val] == [3, 6]
    assert [v for _, v in train] == pytest.approx([v for _, v in history["train_loss"]], rel=1e-6)
    assert [v for _, v in val] == pytest.approx([v for _, v in history["val_loss"][1:]], rel=1e-6)


# --------------------------------------------------------------------------------------------------------------
# 7. the target-position objectives equal the models' own losses


def masked_batch(tokenizer, texts, seed: int = 0) -> dict[str, torch.Tensor]:
    collator = training.make_collator(tokenizer, TrainConfig(mlm_probability=0.3), seed)
    ids = training.tokenize_texts(tokenizer, texts, 32)
    return training.collate(collator, ids, seed)


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta"])
def test_masked_lm_objective_equals_the_model_loss(arch, bert_dir, xlmr_dir):
    model, tokenizer = load_mlm_model(bert_dir if arch == "bert" else xlmr_dir)
    model.eval()
    batch = masked_batch(tokenizer, VAL[:12])
    labels = batch["labels"]
    assert (labels != -100).any() and (labels == -100).any() and (batch["attention_mask"] == 0).any()
    objective = MaskedLMObjective(model)
    assert objective.split is not None  # the target-rows path, not the full forward
    with torch.no_grad():
        loss, n_tokens = objective(**batch)
        expected = model(**batch).loss
    assert n_tokens == (labels != -100).sum()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)

    # with a MAD-X language adapter (seq_bn_inv): the inverse head path runs the invertible adapter's inverse
    # before the output projection, in the objective and in the model's forward alike
    torch.manual_seed(1)
    add_language_adapter(model, "seq_bn_inv", overrides=OVERRIDES)
    with torch.no_grad():
        for p in adapter_parameters(model, "mlm"):
            p.normal_(0, 0.3)  # far from the near-identity initialisation
    model.eval()
    losses = {}
    for path in ("inverse", "paper_compat"):
        set_head_path(model, path)
        with torch.no_grad():
            loss, _ = MaskedLMObjective(model)(**batch)
            expected = model(**batch).loss
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        losses[path] = loss.item()
    assert abs(losses["inverse"] - losses["paper_compat"]) > 1e-3, losses  # the inverse really ran


def test_causal_lm_objective_equals_the_llama_loss(bert_dir):
    _, tokenizer = load_mlm_model(bert_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    assert tokenizer.padding_side == "right"
    collator = training.make_collator(tokenizer, TrainConfig(objective="clm"), 0)
    batch = training.collate(collator, training.tokenize_texts(tokenizer, VAL[:12], 32), 0)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert (mask == 0).any() and torch.equal(labels, ids.masked_fill(mask == 0, -100))
    with torch.no_grad():
        loss, n_tokens = CausalLMObjective(model)(**batch)
        expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert n_tokens == (labels[:, 1:] != -100).sum()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)

    # and train_lm trains it with the clm objective
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainConfig(
        objective="clm", max_steps=3, batch_size=8, learning_rate=1e-2, max_length=32, eval_every=3,
        mixed_precision="no",
    )  # fmt: skip
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert history["steps"] == 3 and history["val_loss"][0][1] == pytest.approx(
        math.log(len(tokenizer)), rel=0.05
    )
    assert all(math.isfinite(v) for _, v in history["val_loss"])
    assert not all(torch.equal(p, before[n]) for n, p in model.named_parameters())


# --------------------------------------------------------------------------------------------------------------
# 8. gradient accumulation


def test_gradient_accumulation_counts_optimizer_steps(bert_dir, monkeypatch):
    forwards = count_training_forwards(monkeypatch)
    model, tokenizer = build(bert_dir, "seq_bn")
    config = TrainConfig(
        max_steps=6, batch_size=4, gradient_accumulation_steps=2, learning_rate=1e-3, max_length=32,
        eval_every=3, log_every=1, mixed_precision="no",
    )  # fmt: skip
    history = train_lm(model, tokenizer, TRAIN, VAL, config, progress=False)
    assert history["steps"] == 6 and forwards[0] == 12  # two micro-batches per optimizer step
    assert [s for s, _ in history["train_loss"]] == [1, 2, 3, 4, 5, 6]
    # the schedule advanced once per optimizer step: linear decay to 0 over max_steps
    assert [lr for _, lr in history["learning_rate"]] == pytest.approx(
        [1e-3 * (6 - k) / 6 for k in range(1, 7)]
    )
    # the tokens of exactly the first 12 batches of epoch 0
    lengths = [len(ids) for ids in training.tokenize_texts(tokenizer, TRAIN, 32)]
    generator = torch.Generator().manual_seed(training._derived_seed(config.seed, 0))
    batches = training.length_grouped_batches(lengths, 4, generator)[:12]
    assert history["tokens_seen"] == sum(lengths[i] for batch in batches for i in batch)


# --------------------------------------------------------------------------------------------------------------
# 9. the paper's defaults, and the precision `auto` picks


PAPER = {  # SPEC §4.2: run_mlm.py + AdapterTrainer settings of the paper's language adapters
    "objective": "mlm", "seed": 42, "mlm_probability": 0.15, "max_length": 512, "batch_size": 16,
    "learning_rate": 1e-4, "max_steps": 25_000, "eval_every": 500, "weight_decay": 0.0, "warmup_steps": 0,
    "gradient_accumulation_steps": 1, "mixed_precision": "auto",
}  # fmt: skip


def test_defaults_are_the_papers_settings():
    from lrl_utils.orchestration.grid import Grid

    assert {k: getattr(TrainConfig(), k) for k in PAPER} == PAPER
    assert TrainConfig().max_grad_norm == 1.0 and TrainConfig().checkpoint_every is None

    # params/profiles/paper.yaml: 25k steps on ConceptNet, 100k on GlotCC, eval every 500; the spec's block is
    # the TrainConfig that train_lm takes
    grid = Grid("paper")
    for model in ("mbert", "xlmr"):
        for source, steps in (("conceptnet", 25_000), ("glotcc", 100_000)):
            for adapter in ("seq_bn", "seq_bn_inv", "lora"):
                train = grid.adapt(model, "tha", source, adapter).train
                assert train == TrainConfig(max_steps=steps), (model, source, adapter)
        assert grid.adapt(model, "tha", "glotcc", "fft").train == TrainConfig(max_steps=100_000)


@pytest.mark.parametrize(
    "cuda, bf16, expected",
    [
        (False, False, "no"),  # CPU: fp32
        (True, True, "bf16"),  # a GPU with bf16 (Ampere and newer): bf16 autocast
        (True, False, "no"),  # an older GPU (V100, T4): fp32 as the paper ran, not fp16 (it may overflow)
    ],
)
def test_auto_precision_is_bf16_only_on_gpus_that_support_it(monkeypatch, cuda, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert training.resolve_precision("auto") == expected
    for explicit in ("no", "bf16", "fp16"):  # an explicit setting is used as it is
        assert training.resolve_precision(explicit) == explicit


def test_auto_precision_on_this_cpu_trains_in_fp32(bert_dir, monkeypatch, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CPU-only check")
    seen = []
    original = training.Accelerator

    def accelerator(*args, **kwargs):
        seen.append(kwargs.get("mixed_precision"))
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "Accelerator", accelerator)
    model, tokenizer = build(bert_dir, "seq_bn")
    config = TrainConfig(max_steps=1, batch_size=8, max_length=32, eval_every=1)
    assert config.mixed_precision == "auto"
    history = train_lm(model, tokenizer, TRAIN, VAL[:8], config, progress=False, checkpoint_dir=tmp_path)
    assert seen == ["no"] and history["precision"] == "no"
    assert checkpoints.load(tmp_path / checkpoints.LAST)["settings"]["precision"] == "no"
