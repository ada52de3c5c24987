"""Run specifications: one frozen dataclass per pipeline stage, hashed to name its output folder.

A spec holds everything that determines a run's result (data locations, model, hyperparameters, the
folders of its upstream runs) and nothing that does not (output folder, thread count). Paths are
relative to the project root. `spec.digest()` is the first 12 hex digits of the SHA-256 of the spec's
canonical JSON, the stage included, so the same spec always lands in the same folder
`runs/<stage>/<slug>--<digest>`. A field added after runs were made (`_added`) is left out of the canonical JSON
while it holds its default, so those runs keep their folders; set to anything else, it is hashed. A `_runtime`
field (the task seed of a `TaskTrainConfig`) is never in it. The settings blocks are the classes the stages take:
`TrainConfig`, `TaskTrainConfig` (`train_settings.py`) and `TinyModel` (`params.py`, a `BaseModelSpec`'s sizes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from lrl_utils.config.params import ParamError, TinyModel, _added, _help, from_dict, is_plain_name, to_dict
from lrl_utils.config.train_settings import TaskTrainConfig, TrainConfig

STAGES = ("preprocess", "base_model", "adapt", "pppl", "finetune", "llm", "report")
SOURCES = ("conceptnet", "glotcc")
SOURCE_SHORT = {"conceptnet": "CN", "glotcc": "Glot", "none": "Base"}
FFT = "fft"  # the `adapter` of a full fine-tuning run (no adapter: the whole model trains)


def _hashed(obj: Any) -> dict:
    """`to_dict` of a dataclass without its `_added` fields that hold their default and without its `_runtime`
    fields (nested blocks too)."""
    data = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if "runtime" in f.metadata or (f.metadata.get("hashed_unless_default") and value == f.default):
            continue
        data[f.name] = _hashed(value) if dataclasses.is_dataclass(value) else to_dict(value)
    return data


# Fields that several specs declare alike (one function each: a dataclass field cannot be shared by two classes)


def _model():
    return _help("model name from params/models.yaml")


def _model_ref():
    return _help("hub id, or the base_model run folder that holds the tiny model")


def _language():
    return _help("language code from params/languages.yaml")


def _world():
    return _help("demo world folder (generated when missing)", default=None)


def _quoting():
    return _added(
        "TSV quoting of the data: raw | csv (null = by the file's format, lrl_utils/data/text_files.py)", None
    )


def _max_bad_fraction():
    return _added("share of malformed sentences/rows per split above which the run fails", 0.001)


def _task_config():
    return _help("the dataset's config: SIB-200 `xxx_Scrp`, sentiment data set, WikiANN ISO-2 code")


def _task_dataset():
    return _help("`hub` or a local folder of the task's data")


# --------------------------------------------------------------------------------------------------
# Stage specs


@dataclass(frozen=True)
class Spec:
    stage: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return to_dict(self)

    def canonical(self) -> str:
        return json.dumps({"stage": self.stage, **_hashed(self)}, sort_keys=True, ensure_ascii=False)

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()[:12]

    def slug(self) -> str:  # human-readable part of the folder name
        raise NotImplementedError

    def folder(self) -> str:
        """Folder relative to the runs directory: `<stage>/<slug>--<digest>`. The slug is made of names (profile,
        language, model, adapter, LLM) that must be plain: one that is not could lead the folder out of `runs/`."""
        slug = self.slug()
        if not is_plain_name(slug):
            raise ParamError(
                f"{self.stage} run: folder name {slug!r} is not a plain name (letters, digits, _-.)"
            )
        return f"{self.stage}/{slug}--{self.digest()}"

    def deps(self) -> tuple[str, ...]:
        """Upstream run folders (relative to the runs directory)."""
        return ()

    def _model_run(self) -> tuple[str, ...]:
        """The base_model run folder the spec's `model_ref` names (a tiny model), or nothing (a hub id)."""
        return (self.model_ref,) if self.model_ref.startswith("base_model/") else ()

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        data.pop("stage", None)
        return from_dict(cls, data, f"{cls.stage} spec")


@dataclass(frozen=True)
class PreprocessSpec(Spec):
    """Turn a language's raw source (ConceptNet edges or GlotCC documents) into train/val/test splits."""

    stage: ClassVar[str] = "preprocess"
    language: str = _language()
    source: Literal["conceptnet", "glotcc"] = _help("conceptnet | glotcc")
    code: str = _help("the language's code in that source (ConceptNet ISO-2, GlotCC `xxx-Scrp`)")
    location: str = _help("`hub` or a local file/folder (relative to the project root)")
    world: str | None = _help(
        "demo world folder the location lives in (generated when missing)", default=None
    )
    split_seed: int = _help("seed of the 80/10/10 split", default=42)
    max_train_bytes: int = _help("GlotCC: cap on train text, UTF-8 bytes (paper: 1 GiB)", default=1024**3)
    max_val_bytes: int = _help(
        "GlotCC: cap on val (and test) text, UTF-8 bytes (paper: 200 MiB)", default=200 * 1024**2
    )
    max_bad_fraction: float = _help(
        "share of malformed lines/records above which the run fails", default=0.001
    )
    paper_compat: bool = _help("reproduce the original's ConceptNet surface-form defect", default=False)

    def slug(self) -> str:
        return f"{self.language}.{self.source}"


@dataclass(frozen=True, kw_only=True)
class BaseModelSpec(TinyModel, Spec):
    """Build a tiny model (demo): train its tokenizer and pre-train it on the seen languages. The sizes
    (`vocab_size`, `hidden_size`, `num_layers`, `num_heads`, `intermediate_size`, `max_position`, `alphabet`) are
    the model's `TinyModel` fields: the spec is one, and `build_tiny_model` takes it as it is."""

    stage: ClassVar[str] = "base_model"
    model: str = _model()
    architecture: Literal["bert", "xlm-roberta", "llama"] = _help("bert | xlm-roberta | llama (decoder)")
    corpora: tuple[str, ...] = _help("preprocess runs (GlotCC splits of the seen languages)")
    train: TrainConfig = _help("pre-training settings")
    shares: tuple[float, ...] = _help("per corpus: the fraction of its train documents used", default=())
    seed: int = _help("initialisation seed", default=0)
    vocabulary_corpora: tuple[str, ...] = _added(
        "preprocess runs (GlotCC splits) whose train documents, all of them, the tokenizer also learns from",
        default=(),
    )

    def slug(self) -> str:
        return self.model

    def deps(self) -> tuple[str, ...]:
        return self.corpora + tuple(c for c in self.vocabulary_corpora if c not in self.corpora)


@dataclass(frozen=True)
class AdaptSpec(Spec):
    """Train a language adapter (or, with adapter `fft`, the whole model) on one language and source, with masked
    LM, or causal LM for decoder models (`train.objective`)."""

    stage: ClassVar[str] = "adapt"
    model: str = _model()
    model_ref: str = _model_ref()
    language: str = _language()
    source: Literal["conceptnet", "glotcc"] = _help("training text")
    adapter: str = _help("adapter method (registered in adapters/registry.py), or fft (full fine-tuning)")
    adapter_config: str = _help("`adapters` config name the adapter is built from (params/adapters.yaml)")
    adapter_overrides: dict[str, Any] = _help("config fields that differ from the library defaults")
    corpus: str = _help("preprocess run folder with the train/val splits")
    train: TrainConfig = _help("training settings")
    head_path: Literal["inverse", "paper_compat"] = _help(
        "LM head: pretrained head with the invertible adapter's inverse, or the original's path without it",
        default="inverse",
    )

    def slug(self) -> str:
        return f"{self.model}.{self.language}.{self.source}.{self.adapter}"

    def deps(self) -> tuple[str, ...]:
        return (*self._model_run(), self.corpus)


@dataclass(frozen=True)
class PPPLSpec(Spec):
    """Pseudo-perplexity on FLORES-200 devtest of a base model, or a base model with a language adapter."""

    stage: ClassVar[str] = "pppl"
    model: str = _model()
    model_ref: str = _model_ref()
    language: str = _language()
    flores_code: str = _help("FLORES-200 code")
    devtest: str = _help("`hub` or a local FLORES-200 file/folder")
    world: str | None = _world()
    source: Literal["none", "conceptnet", "glotcc"] = _help("source of the language adapter", default="none")
    adapter: str = _help("adapter method, `fft` (fully fine-tuned model) or `none` (base)", default="none")
    adapter_run: str | None = _help("adapt run folder", default=None)
    max_sentences: int | None = _help("evaluate only the first N sentences (null = all 1012)", default=None)
    max_length: int = _help("token limit per sentence", default=512)
    quoting: Literal["raw", "csv"] | None = _quoting()
    samples: bool = _added(
        "the devtest file is a sample: fewer than the release's 1012 sentences allowed", False
    )

    def slug(self) -> str:
        return f"{self.model}.{self.language}.{self.source}.{self.adapter}"

    def deps(self) -> tuple[str, ...]:
        return (*self._model_run(), *((self.adapter_run,) if self.adapter_run else ()))


@dataclass(frozen=True)
class FinetuneSpec(Spec):
    """Train a task adapter stacked on the frozen language adapter (or on the bare or fully fine-tuned model, or on
    a fusion of the ConceptNet and GlotCC adapters) and test it."""

    stage: ClassVar[str] = "finetune"
    model: str = _model()
    model_ref: str = _model_ref()
    language: str = _language()
    task: Literal["tc", "sa", "ner"] = _help("tc = SIB-200 topics, sa = binary sentiment, ner = WikiANN")
    flores_code: str = _task_config()
    dataset: str = _task_dataset()
    world: str | None = _world()
    source: Literal["none", "conceptnet", "glotcc", "fusion"] = _help(
        "language adapter source (fusion: both)", default="none"
    )
    adapter: str = _help("language adapter method, `fft` (fully fine-tuned model) or `none`", default="none")
    adapter_run: str | None = _help("adapt run folder (fusion: the ConceptNet adapter)", default=None)
    fusion_run: str | None = _help("fusion: the GlotCC adapter's adapt run folder", default=None)
    seed: int = _help("training seed (paper: 1, 2, 3)", default=1)
    train: TaskTrainConfig = _help("training settings", default_factory=TaskTrainConfig)
    quoting: Literal["raw", "csv"] | None = _quoting()
    max_bad_fraction: float = _max_bad_fraction()

    def slug(self) -> str:
        return f"{self.model}.{self.language}.{self.task}.{self.source}.{self.adapter}.s{self.seed}"

    def deps(self) -> tuple[str, ...]:
        return (*self._model_run(), *(r for r in (self.adapter_run, self.fusion_run) if r))


@dataclass(frozen=True)
class LLMSpec(Spec):
    """Prompt an LLM on the test set of one language and task (zero- or k-shot) and score its answers."""

    stage: ClassVar[str] = "llm"
    llm: str = _help("LLM name from params/llms.yaml")
    backend: Literal["transformers", "openai"] = _help("transformers | openai")
    model_ref: str = _help("hub id, base_model run folder (tiny models), or the endpoint's model name")
    language: str = _language()
    task: Literal["tc", "sa", "ner"] = _help("tc | sa | ner")
    flores_code: str = _task_config()
    dataset: str = _task_dataset()
    world: str | None = _world()
    missing_splits: Literal["error", "carve"] = _added(
        "SA/NER: missing splits are an error or carved out (the profile's finetune.<task>, as the task runs)",
        "error",
    )
    split_seed: int = _added("seed of the carving", 42)
    base_url: str | None = _help("openai: endpoint URL", default=None)
    api_key_env: str | None = _help("openai: name of the environment variable with the key", default=None)
    chat: bool = _help("chat form when available", default=True)
    template: str = _help("prompt template of params/prompts.yaml", default="default")
    shots: int = _help("k examples from train in the prompt (0 = zero-shot)", default=0)
    shot_seed: int = _help("seed of the shot draw", default=0)
    max_items: int | None = _help("the first N test items (null = all)", default=None)
    max_new_tokens: int = _help("generation budget per answer", default=100)
    batch_size: int = _help("prompts per generation batch (local models)", default=8)
    quoting: Literal["raw", "csv"] | None = _quoting()
    max_bad_fraction: float = _max_bad_fraction()
    # How the model is run or reached (params/llms.yaml); null for the other backend's fields. They name the run
    # (a changed timeout is a new run) but not its response cache (`llm_baselines.cache_path`): a re-run with a
    # longer timeout or another device_map resumes from the responses already paid for.
    device_map: str | None = _help(
        "transformers: `device_map` of from_pretrained (null = one device, the GPU if any; auto = spread)",
        default=None,
    )
    dtype: str | None = _help("transformers: weight dtype (auto = bf16 on a GPU that has it)", default=None)
    timeout: float | None = _help("openai: seconds per request", default=None)
    max_retries: int | None = _help(
        "openai: retries after 429 / 5xx / timeouts / connection errors", default=None
    )
    initial_backoff: float | None = _help(
        "openai: seconds before the first retry (doubled per retry)", default=None
    )
    max_backoff: float | None = _help("openai: the longest wait between attempts, seconds", default=None)
    concurrency: int | None = _help("openai: requests in flight at once", default=None)

    TRANSPORT: ClassVar[tuple[str, ...]] = (
        "device_map", "timeout", "max_retries", "initial_backoff", "max_backoff", "concurrency"
    )  # fmt: skip

    def slug(self) -> str:
        return f"{self.llm}.{self.language}.{self.task}.{self.shots}shot"

    def deps(self) -> tuple[str, ...]:
        return self._model_run()


@dataclass(frozen=True)
class ReportSpec(Spec):
    """Tables or figures rebuilt from the result.json files of the evaluation runs."""

    stage: ClassVar[str] = "report"
    kind: Literal["tables", "figures"] = _help("tables | figures")
    profile: str = _help("profile the report belongs to")
    inputs: tuple[str, ...] = _help(
        "evaluation run folders the report reads (missing ones are shown as missing)"
    )
    f1_tolerance: float = _help("reproduced-vs-reported: absolute F1 tolerance (0-1 scale)", default=0.02)
    pppl_tolerance: float = _help(
        "reproduced-vs-reported: relative pseudo-perplexity tolerance", default=0.10
    )
    loss_tolerance: float = _help(
        "reproduced-vs-reported: absolute adapter validation-loss tolerance (nats)", default=0.1
    )

    def slug(self) -> str:
        return f"{self.profile}.{self.kind}"


SPEC_CLASSES: dict[str, type[Spec]] = {
    cls.stage: cls
    for cls in (PreprocessSpec, BaseModelSpec, AdaptSpec, PPPLSpec, FinetuneSpec, LLMSpec, ReportSpec)
}
