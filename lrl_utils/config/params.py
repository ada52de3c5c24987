"""Typed parameters: the language, model and adapter registries and the run profiles in `params/`.

Every YAML file is read with a loader that refuses a key given twice (`yaml_loader`), then turned into frozen
dataclasses by `from_dict` (`schema.py`, re-exported here), which rejects unknown keys, wrong types,
out-of-range numbers and NaN or infinite floats with one line naming the file and the innermost key, before any
compute starts. Field help texts and bounds live in the field metadata (`_help(text, minimum=, maximum=, above=,
below=)`). Registry names (languages, models, adapters, LLMs) become parts of run-folder names, so they must be
plain names (`check_plain_name`); adapter `config` names and `overrides` are checked against the `adapters`
library's config classes (`adapter_params`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lrl_utils.config import paths, yaml_loader
from lrl_utils.config.schema import (  # noqa: F401  (re-exported: the params API)
    MAX_SEED,
    MIN_LENGTH,
    Checked,
    Invalid,
    ParamError,
    _added,
    _help,
    _seed,
    check_name,
    check_plain_name,
    describe,
    from_dict,
    is_plain_name,
    to_dict,
)


def _size(text: str, column: str | None = None) -> Any:
    """An optional non-negative data-size statistic (None where the resource has no data for the language).
    `column`: the column of SPEC §8.1's table (the original's stats/language_data_sizes.csv) it is transcribed
    from, named at the end of the help text; the task-data sizes (SPEC §1) have none."""
    return _help(f"{text} (SPEC §8.1 `{column}`)" if column else text, minimum=0, default=None)


# --------------------------------------------------------------------------------------------------
# Registries


@dataclass(frozen=True)
class Language(Checked):
    name: str = _help("English name used in tables")
    iso2: str = _help("ConceptNet / WikiANN code (ISO 639-1 where it exists)")
    glotcc: str = _help("GlotCC-V1 config, `xxx-Scrp`")
    flores: str = _help("FLORES-200 / SIB-200 code, `xxx_Scrp`")
    family: str = _help("language family")
    seen_by: tuple[str, ...] = _help("models whose pre-training data contain the language", default=())
    sentiment: str | None = _help("sentiment dataset on the hub", default=None)
    demo: bool = _help("a synthetic language of the embedded demo world", default=False)
    paper: bool = _help(
        "one of the paper's 30 languages (SPEC §1), with their statistics; a language added beyond them leaves it out",
        default=False,
    )
    # Data-size statistics (SPEC §1 and §8.1, from the original repo's stats/*.csv); null where the resource has
    # no data for the language (CC100 has no mt or bo) and for the demo languages.
    joshi_class: int | None = _help(
        "resource class in the Joshi et al. (2020) taxonomy, 0 (left behind) to 5 (winners)",
        minimum=0,
        maximum=5,
        default=None,
    )
    conceptnet_sentences: int | None = _size("ConceptNet sentences in the train split", "CN_sents")
    conceptnet_mb: float | None = _size("size of the ConceptNet train sentences in MB", "CN_mb")
    glotcc_docs: int | None = _size("GlotCC-V1 train lines after the 1 GB cap and cleaning", "Glot_docs")
    glotcc_mb: float | None = _size("size of the GlotCC-V1 train split in MB", "Glot_mb")
    wiki_docs: int | None = _size(
        "Wikipedia articles, 2023-11-01 dump (proxy of the pre-training data)", "Wiki docs"
    )
    wiki_gb: float | None = _size(
        "Wikipedia size in GB, 2023-11-01 dump (mBERT pre-training proxy)", "Wiki GB"
    )
    cc100_docs: int | None = _size(
        "CC100 documents (XLM-R pre-training proxy); null if absent from CC100", "CC100 docs"
    )
    cc100_gb: float | None = _size(
        "CC100 size in GB (XLM-R pre-training proxy); null if absent from CC100", "CC100 GB"
    )
    sentiment_train: int | None = _size("sentiment dataset train size (get_task_finetune.py)")
    ner_train: int | None = _size("WikiANN train sentences (Rahimi et al. 2019 split)")
    ner_validation: int | None = _size("WikiANN validation sentences")
    ner_test: int | None = _size("WikiANN test sentences")

    def check(self) -> None:
        """The codes' forms, checked when the registry loads: a wrong one would fail only when a run reads the
        hub, or make a local loader look in the wrong folder."""
        forms = {
            "flores": (r"[a-z]{3}_[A-Z][a-z]{3}", "`xxx_Scrp` (ISO 639-3, underscore, ISO 15924 script)"),
            "glotcc": (r"[a-z]{3}-[A-Z][a-z]{3}", "`xxx-Scrp` (ISO 639-3, hyphen, ISO 15924 script)"),
            "iso2": (  # WikiANN also has configs such as `zh-yue` and `be-x-old`
                r"[a-z]{2,8}(-[a-z0-9]+)*",
                "a lower-case ISO 639-1 code (ISO 639-3 where there is none), as ConceptNet and WikiANN name it",
            ),
        }
        for key, (pattern, form) in forms.items():
            if not re.fullmatch(pattern, getattr(self, key)):
                raise Invalid(key, f"expected {form}, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class TinyModel(Checked):
    """The sizes of a tiny model built and pre-trained by the base_model stage (the real mBERT / XLM-R: hidden
    768, 12 layers, 12 heads, 3072, 514 positions). `training.base_models.build_tiny_model` takes it."""

    vocab_size: int = _help("tokenizer vocabulary size", minimum=1, default=2000)
    hidden_size: int = _help("hidden size", minimum=1, default=64)
    num_layers: int = _help("transformer layers", minimum=1, default=2)
    num_heads: int = _help("attention heads (must divide hidden_size)", minimum=1, default=2)
    intermediate_size: int = _help("feed-forward size", minimum=1, default=128)
    max_position: int = _help("position embeddings (max tokens + 2)", minimum=MIN_LENGTH + 2, default=130)
    alphabet: str = _help("characters the tokenizer must cover beyond its training text", default="")

    def check(self) -> None:
        if self.hidden_size % self.num_heads:
            raise Invalid("num_heads", f"must divide hidden_size ({self.hidden_size}), got {self.num_heads}")


@dataclass(frozen=True)
class Model(Checked):
    architecture: Literal["bert", "xlm-roberta", "llama"] = _help("model family")
    display: str = _help("name shown in tables and figures")
    hub_id: str | None = _help(
        "Hugging Face hub id; null for models built by the base_model stage", default=None
    )
    tiny: TinyModel | None = _help("sizes of a tiny model built and pre-trained locally", default=None)

    def check(self) -> None:
        if (self.hub_id is None) == (self.tiny is None):
            raise Invalid("", "give exactly one of `hub_id` or `tiny`")
        head = self.tiny and self.tiny.hidden_size // self.tiny.num_heads
        if self.architecture == "llama" and head and head % 2:  # rotary embeddings rotate pairs of dimensions
            raise Invalid(
                "tiny.num_heads",
                f"a llama's head size (hidden_size / num_heads) must be even for its rotary position embeddings, "
                f"got {self.tiny.hidden_size} / {self.tiny.num_heads} = {head}",
            )


@dataclass(frozen=True)
class AdapterSetting:
    config: str = _help("`adapters` library config name")
    overrides: dict[str, Any] = _help(
        "config fields that differ from the library defaults", default_factory=dict
    )


@dataclass(frozen=True)
class LLM:
    """A prompted LLM of the baselines: a local `transformers` model, or a model behind an OpenAI-compatible API."""

    backend: Literal["transformers", "openai"] = _help(
        "transformers (local) | openai (any compatible endpoint)"
    )
    display: str = _help("name shown in tables")
    hub_id: str | None = _help("transformers: hub id or local folder", default=None)
    tiny: str | None = _help(
        "transformers: a tiny model of models.yaml built by the base_model stage", default=None
    )
    model: str | None = _help("openai: the endpoint's model name", default=None)
    base_url: str | None = _help("openai: endpoint URL (null = api.openai.com)", default=None)
    api_key_env: str = _help(
        "openai: the environment variable holding the API key (never the key)", default="OPENAI_API_KEY"
    )
    chat: bool = _help("use the chat form (chat template / chat completions) when available", default=True)
    # How a model is run or reached (part of the run spec; not of the response-cache identity, see llm_baselines).
    device_map: str | None = _help(
        "transformers: `device_map` of from_pretrained. null = the whole model on one device (the GPU if there "
        "is one, else the CPU); auto = spread a large model (32B/70B) over all GPUs, then CPU RAM (the paper's "
        "DeepSeek runs); also balanced, balanced_low_0, sequential, or one device (cpu, cuda, cuda:N, mps)",
        default=None,
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = _help(
        "transformers: weight dtype; auto = bf16 on a GPU that supports it, else float32", default="auto"
    )
    timeout: float = _help(
        "openai: seconds per request before it is abandoned (and retried)", above=0, default=60.0
    )
    max_retries: int = _help(
        "openai: retries of a request after a 429, 408/409, 5xx, connection error or timeout",
        minimum=0,
        default=5,
    )
    initial_backoff: float = _help(
        "openai: seconds before the first retry, doubled per retry (x a random factor in [0.5, 1]; a server's "
        "Retry-After is honoured up to max_backoff)",
        minimum=0,
        default=1.0,
    )
    max_backoff: float = _help(
        "openai: the longest wait between two attempts, seconds", minimum=0, default=60.0
    )
    concurrency: int = _help("openai: requests in flight at once (parallel threads)", minimum=1, default=1)


# Fields of an LLM registry entry that only one backend reads: set on the other backend, they are an error.
LLM_BACKEND_FIELDS = {
    "transformers": ("hub_id", "tiny", "device_map", "dtype"),
    "openai": (
        "model", "base_url", "api_key_env", "timeout", "max_retries", "initial_backoff", "max_backoff", "concurrency"
    ),
}  # fmt: skip
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def _check_llm(name: str, llm: LLM, models: dict) -> None:
    """Cross-field checks of one params/llms.yaml entry (types and bounds are checked by `from_dict`)."""
    import re

    file, where = "params/llms.yaml", f"llms.{name}"
    wanted = {"transformers": ("hub_id", "tiny"), "openai": ("model",)}[llm.backend]
    given = [k for k in ("hub_id", "tiny", "model") if getattr(llm, k) is not None]
    if len(given) != 1 or given[0] not in wanted:
        raise ParamError(f"{file}: `{where}`: a {llm.backend} LLM needs exactly one of {' or '.join(wanted)}")
    defaults = {f.name: f.default for f in dataclasses.fields(LLM)}
    for backend, names in LLM_BACKEND_FIELDS.items():
        for key in names:
            if backend != llm.backend and getattr(llm, key) != defaults[key]:
                raise ParamError(
                    f"{file}: `{where}.{key}`: only for {backend} LLMs, this one is {llm.backend}"
                )
    if llm.device_map is not None and not (
        llm.device_map in DEVICE_MAPS or re.fullmatch(r"cpu|mps|cuda(:\d+)?", llm.device_map)
    ):
        raise ParamError(
            f"{file}: `{where}.device_map`: expected null, {', '.join(DEVICE_MAPS)} or a device "
            f"(cpu, cuda, cuda:N, mps), got {llm.device_map!r}"
        )
    if llm.max_backoff < llm.initial_backoff:
        raise ParamError(
            f"{file}: `{where}.max_backoff`: must be >= initial_backoff "
            f"({llm.initial_backoff}), got {llm.max_backoff}"
        )
    if llm.tiny is not None:
        check_name(llm.tiny, models, file, f"{where}.tiny", "model")


@dataclass(frozen=True)
class Registry:
    languages: dict[str, Language]
    models: dict[str, Model]
    adapters: dict[str, AdapterSetting]
    llms: dict[str, LLM] = field(default_factory=dict)


def read_yaml(path: Path) -> Any:
    """A params YAML file's content; invalid YAML or a key given twice in one mapping is a one-line ParamError."""
    file = paths.relative(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ParamError(f"{file}: file not found") from None
    except OSError as err:  # a folder, no permission
        raise ParamError(f"{file}: cannot read ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM is allowed
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ParamError(f"{file}:{line}: not valid UTF-8 (byte {raw[err.start]:#04x})") from None
    try:
        return yaml_loader.load(text)
    except yaml_loader.DuplicateKey as err:
        raise ParamError(f"{file}:{err.line}: {err}") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (a NUL, a control character)
        line = text[: err.position].count("\n") + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise ParamError(f"{file}:{line}: invalid YAML (character U+{code:04X} is not allowed)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())  # one line
        raise ParamError(f"{file}{line}: invalid YAML ({problem})") from None


def _registry_file(name: str, key: str, cls: type) -> dict:
    path = paths.params_dir() / name
    data = read_yaml(path)
    file = paths.relative(path)
    if not isinstance(data, dict) or set(data) != {key}:
        raise ParamError(f"{file}: expected a single top-level key `{key}`")
    if not isinstance(data[key], dict):
        raise ParamError(f"{file}: `{key}` must be a mapping of names")
    for name, entry in data[key].items():
        check_plain_name(name, file, f"{key}.{name}", key[:-1])
        if entry is not None and not isinstance(entry, dict):
            raise ParamError(
                f"{file}: `{key}.{name}`: expected a mapping of settings, got {type(entry).__name__}"
            )
    return {str(k): from_dict(cls, v or {}, file, f"{key}.{k}") for k, v in data[key].items()}


def load_registry() -> Registry:
    """The registries of `params/`, checked (types, bounds, names). The adapter entries' check against the
    `adapters` library (which imports torch) is `adapters.settings.load_registry`'s, one layer up."""
    reg = Registry(
        languages=_registry_file("languages.yaml", "languages", Language),
        models=_registry_file("models.yaml", "models", Model),
        adapters=_registry_file("adapters.yaml", "adapters", AdapterSetting),
        llms=_registry_file("llms.yaml", "llms", LLM),
    )
    for name, llm in reg.llms.items():
        _check_llm(name, llm, reg.models)
    for code, lang in reg.languages.items():
        for model in lang.seen_by:
            check_name(model, reg.models, "params/languages.yaml", f"languages.{code}.seen_by", "model")
    return reg
