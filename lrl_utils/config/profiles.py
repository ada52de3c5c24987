"""Profiles (`params/profiles/<name>.yaml`): which grid of runs to make, on which data, with which settings.

`demo` runs offline on CPU in minutes on the embedded demo world; `paper` is the paper's full grid
(it expands and validates anywhere, but needs the hub and GPUs to run); `real-samples` runs every stage on the
real samples of ../shared/data (local data, tiny models); `swahili-local` is the README's local-data profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lrl_utils.config import paths
from lrl_utils.config.cluster import SlurmSettings, check_slurm
from lrl_utils.config.data_settings import QUOTED_DATASETS, TASK_DATA, DataSettings
from lrl_utils.config.params import (
    MIN_LENGTH,
    ParamError,
    Registry,
    _help,
    _seed,
    check_name,
    from_dict,
    is_plain_name,
    load_registry,
    read_yaml,
)
from lrl_utils.config.schema import MAX_NAME
from lrl_utils.config.specs import SOURCES
from lrl_utils.config.train_settings import TaskTrainConfig, TrainConfig


@dataclass(frozen=True)
class BaseModelSettings:
    languages: tuple[str, ...] = _help("languages the tiny models are pre-trained on (= seen languages)")
    train: TrainConfig = _help("pre-training settings")
    shares: dict[str, float] = _help(
        "per language: the fraction of its GlotCC train documents used (default 1; a seen low-resource "
        "language is a small part of a real model's pre-training data)",
        above=0,
        maximum=1,
        default_factory=dict,
    )
    vocabulary: tuple[str, ...] = _help(
        "languages whose GlotCC train documents, all of them whatever their share, the tokenizer is trained on "
        "besides the pre-training text (empty = the pre-training text alone). XLM-R's vocabulary was built with "
        "low-resource languages upsampled and covers scripts and subwords its weights hardly saw",
        default=(),
    )


@dataclass(frozen=True)
class CausalLMSettings:
    """Causal-LM language adapters for decoder models (the paper: LLaMA-3-8B, seq_bn_inv, GlotCC, 5 languages)."""

    models: tuple[str, ...] = _help("decoder models from params/models.yaml (architecture llama)")
    languages: tuple[str, ...] = _help("languages to adapt")
    adapt: dict[str, TrainConfig] = _help("training settings per source (objective clm is implied)")
    adapters: tuple[str, ...] = _help("adapter methods (the paper: seq_bn_inv)", default=("seq_bn_inv",))
    pretrain: TrainConfig | None = _help(
        "tiny decoders only: causal-LM pre-training settings (null = those of base_model.train)", default=None
    )


@dataclass(frozen=True)
class LLMBaselineSettings:
    """Prompted LLM baselines: which LLMs, tasks and languages, zero- or k-shot."""

    llms: tuple[str, ...] = _help("LLMs from params/llms.yaml")
    tasks: tuple[Literal["tc", "sa", "ner"], ...] = _help("tasks to prompt")
    languages: tuple[str, ...] = _help("languages (empty = the profile's languages)", default=())
    shots: tuple[int, ...] = _help(
        "k of k-shot prompting, one run each (0 = zero-shot)", minimum=0, default=(0,)
    )
    template: str = _help("prompt template of params/prompts.yaml", default="default")
    shot_seed: int = _seed("seed of the shot draw", default=0)
    max_items: int | None = _help("the first N test items per run (null = all)", minimum=1, default=None)
    max_new_tokens: int = _help("generation budget per answer", minimum=1, default=100)
    batch_size: int = _help("prompts per generation batch (local models)", minimum=1, default=8)


@dataclass(frozen=True)
class ReportSettings:
    """How the report compares reproduced numbers with the paper's (params/reference/)."""

    f1_tolerance: float = _help(
        "a reproduced F1 (0-1 scale) within this absolute distance of the paper's counts as reproduced",
        minimum=0,
        default=0.02,
    )
    pppl_tolerance: float = _help(
        "a reproduced pseudo-perplexity within this relative distance of the paper's counts as reproduced",
        minimum=0,
        default=0.10,
    )
    loss_tolerance: float = _help(
        "a reproduced adapter validation loss (nats) within this absolute distance of Table 8's",
        minimum=0,
        default=0.1,
    )


@dataclass(frozen=True)
class PPPLSettings:
    max_sentences: int | None = _help("first N devtest sentences (null = all)", minimum=1, default=None)
    max_length: int = _help("token limit per sentence", minimum=MIN_LENGTH, default=512)


@dataclass(frozen=True)
class Profile:
    description: str = _help("what this profile is for")
    data: DataSettings = _help("where the data come from")
    languages: tuple[str, ...] = _help("languages to adapt and evaluate")
    models: tuple[str, ...] = _help("models from params/models.yaml")
    adapters: tuple[str, ...] = _help("adapter methods from params/adapters.yaml")
    sources: tuple[Literal["conceptnet", "glotcc"], ...] = _help("language-adapter training text")
    tasks: tuple[Literal["tc", "sa", "ner"], ...] = _help(
        "downstream tasks: tc (SIB-200), sa (sentiment), ner"
    )
    seeds: tuple[int, ...] = _seed("downstream training seeds")
    adapt: dict[str, TrainConfig] = _help("language-adapter training settings per source")
    finetune: dict[str, TaskTrainConfig] = _help("task-adapter training settings per task")
    pppl: PPPLSettings = _help("pseudo-perplexity settings", default_factory=PPPLSettings)
    adapter_overrides: dict[str, dict[str, Any]] = _help(
        "per adapter method: config fields that differ from params/adapters.yaml", default_factory=dict
    )
    base_model: BaseModelSettings | None = _help("pre-training of tiny models (demo)", default=None)
    full_finetuning: dict[str, TrainConfig] = _help(
        "per source: settings of the full fine-tuning (FFT) baseline of every model and language; {} = none",
        default_factory=dict,
    )
    causal_lm: CausalLMSettings | None = _help("causal-LM language adapters of decoder models", default=None)
    llm_baselines: LLMBaselineSettings | None = _help("prompted LLM baselines", default=None)
    fusion: tuple[str, ...] = _help(
        "NER only: adapter methods whose ConceptNet and GlotCC adapters are fused (paper: seq_bn, seq_bn_inv)",
        default=(),
    )
    adapter_configs: tuple[str, ...] = _help(
        "only these language adapters are trained (and their PPPL measured), as `source/adapter` "
        "(glotcc/seq_bn, conceptnet/seq_bn_inv, ...); empty = every source × adapter (the paper)",
        default=(),
    )
    task_configs: dict[str, tuple[str, ...]] = _help(
        "per task (or `<task>.<language>` for one language): only these configurations are fine-tuned, as "
        "`source/adapter` (none/none = the base model, glotcc/seq_bn_inv, glotcc/fft, fusion/seq_bn, ...); a task "
        "not listed gets every configuration (the paper)",
        default_factory=dict,
    )
    task_languages: dict[str, tuple[str, ...]] = _help(
        "per task: the languages it runs on (default: `languages`); a language not in `languages` is task-only: "
        "no adapters or PPPL, the task on the base model alone (none/none), e.g. a language without text",
        default_factory=dict,
    )
    head_path: Literal["inverse", "paper_compat"] = _help(
        "LM head of language-adapter training and PPPL: with the invertible adapter's inverse, or the original's",
        default="inverse",
    )
    jobs: int = _help("runs executed in parallel by default", minimum=1, default=1)
    report: ReportSettings = _help("reproduced-vs-reported comparison", default_factory=ReportSettings)
    slurm: SlurmSettings = _help("resources per stage on a SLURM cluster", default_factory=SlurmSettings)


def profile_path(name: str):
    """`params/profiles/<name>.yaml`; a profile is named, not located: a name that is not plain is refused."""
    if not is_plain_name(name):
        raise ParamError(
            f"profile name {name[:120]!r}: a profile is named, not located (letters, digits, `_`, `-` and inner "
            f"dots, at most {MAX_NAME} characters: params/profiles/<name>.yaml); available: "
            f"{', '.join(available_profiles())}"
        )
    return paths.params_dir() / "profiles" / f"{name}.yaml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in (paths.params_dir() / "profiles").glob("*.yaml") if is_plain_name(p.stem))


def load_profile(name: str, registry: Registry | None = None) -> tuple[Profile, Registry]:
    """Load, type-check and cross-check a profile against the registries (field bounds: `from_dict`); the
    adapter overrides' check against their method is `adapters.settings.load_profile`'s."""
    path = profile_path(name)
    if not path.exists():
        stem = name.removesuffix(".yaml").removesuffix(".yml")
        hint = f"; did you mean --profile {stem}?" if stem != name and stem in available_profiles() else ""
        raise ParamError(
            f"unknown profile {name!r} (no {paths.relative(path)}; available: {available_profiles()}){hint}"
        )
    file = paths.relative(path)
    prof = from_dict(Profile, read_yaml(path) or {}, file)
    reg = registry or load_registry()
    for key in ("languages", "models", "adapters", "sources", "tasks", "seeds"):  # a repeat would run once
        values = list(getattr(prof, key))
        for i, value in enumerate(values):
            if value in values[:i]:
                raise ParamError(f"{file}: `{key}[{i}]`: {value!r} is listed twice")
    for i, code in enumerate(prof.languages):
        check_name(code, reg.languages, file, f"languages[{i}]", "language")
    for i, model in enumerate(prof.models):
        check_name(model, reg.models, file, f"models[{i}]", "model")
    for i, adapter in enumerate(prof.adapters):
        check_name(adapter, reg.adapters, file, f"adapters[{i}]", "adapter")
    for adapter in prof.adapter_overrides:
        check_name(adapter, reg.adapters, file, f"adapter_overrides.{adapter}", "adapter")
    for source in prof.sources:
        if source not in prof.adapt:
            raise ParamError(f"{file}: missing key `adapt.{source}` (training settings for source {source})")
    for key in prof.adapt:
        check_name(key, SOURCES, file, f"adapt.{key}", "source")
    for section in ("adapt", "full_finetuning"):  # decoders are refused in `models` (below)
        for key, train in getattr(prof, section).items():
            if train.objective != "mlm":
                raise ParamError(
                    f"{file}: `{section}.{key}.objective`: the models of `models` are encoders, trained with masked "
                    f"LM (mlm); causal-LM adapters of decoders are set in `causal_lm.adapt`"
                )
    for i, adapter in enumerate(prof.fusion):
        check_name(adapter, prof.adapters, file, f"fusion[{i}]", "adapter of this profile")
    if prof.fusion and ("ner" not in prof.tasks or set(prof.sources) != {"conceptnet", "glotcc"}):
        raise ParamError(f"{file}: `fusion`: needs task ner and both sources conceptnet and glotcc")
    every = [f"{s}/{a}" for s in prof.sources for a in prof.adapters]
    for i, config in enumerate(prof.adapter_configs):
        check_name(config, every, file, f"adapter_configs[{i}]", "source/adapter of this profile")
    adapted = list(prof.adapter_configs) or every
    for i, adapter in enumerate(prof.fusion):
        if not {f"conceptnet/{adapter}", f"glotcc/{adapter}"} <= set(adapted):
            raise ParamError(
                f"{file}: `fusion[{i}]`: {adapter} needs conceptnet/{adapter} and glotcc/{adapter} "
                "in `adapter_configs`"
            )
    for key, configs in prof.task_configs.items():
        task, _, language = key.partition(".")
        check_name(task, prof.tasks, file, f"task_configs.{key}", "task of this profile")
        if language:
            check_name(
                language, task_languages(prof, task), file, f"task_configs.{key}", f"language of {task}"
            )
        known = ["none/none", *adapted]
        known += [f"{s}/fft" for s in prof.full_finetuning]
        known += [f"fusion/{a}" for a in prof.fusion] if task == "ner" else []
        for i, config in enumerate(configs):
            check_name(config, known, file, f"task_configs.{key}[{i}]", "configuration of this profile")
    for key in prof.full_finetuning:
        check_name(key, SOURCES, file, f"full_finetuning.{key}", "source")
    _check_task_languages(prof, reg, file)
    if prof.causal_lm is not None:
        _check_causal_lm(prof.causal_lm, reg, file)
    if prof.llm_baselines is not None:
        b = prof.llm_baselines
        for i, llm in enumerate(b.llms):
            check_name(llm, reg.llms, file, f"llm_baselines.llms[{i}]", "LLM")
            tiny = reg.llms[llm].tiny
            if tiny is not None and prof.base_model is None:
                raise ParamError(f"{file}: missing key `base_model` (needed to build {tiny} for {llm})")
        for i, code in enumerate(b.languages):
            check_name(code, reg.languages, file, f"llm_baselines.languages[{i}]", "language")
    for task in prof.tasks:
        if task not in prof.finetune:
            raise ParamError(f"{file}: missing key `finetune.{task}` (training settings for task {task})")
    for key in prof.finetune:
        check_name(key, ("tc", "sa", "ner"), file, f"finetune.{key}", "task")
    for key, what in (("seeds", "seed"), ("models", "model"), ("languages", "language")):
        others = key != "seeds" and (
            prof.causal_lm or prof.llm_baselines or (key == "languages" and any(prof.task_languages.values()))
        )
        if not getattr(prof, key) and not others:  # nothing would be adapted or evaluated
            raise ParamError(f"{file}: `{key}`: give at least one {what}")
    decoders = [m for m in prof.models if reg.models[m].architecture == "llama"]
    if decoders:
        raise ParamError(f"{file}: `models`: {decoders[0]!r} is a decoder; list it under `causal_lm.models`")
    tiny = [
        m for m in (*prof.models, *(prof.causal_lm.models if prof.causal_lm else ())) if reg.models[m].tiny
    ]
    if tiny and prof.base_model is None:
        raise ParamError(f"{file}: missing key `base_model` (needed to build tiny models {tiny})")
    if prof.base_model is not None:
        if not prof.base_model.languages:
            raise ParamError(
                f"{file}: `base_model.languages`: give the languages the tiny models pre-train on"
            )
        for i, code in enumerate(prof.base_model.languages):
            check_name(code, reg.languages, file, f"base_model.languages[{i}]", "language")
        for code in prof.base_model.shares:
            check_name(
                code,
                prof.base_model.languages,
                file,
                f"base_model.shares.{code}",
                "language of base_model.languages",
            )
        for i, code in enumerate(prof.base_model.vocabulary):
            check_name(code, reg.languages, file, f"base_model.vocabulary[{i}]", "language")
    if prof.data.mode == "demo":
        causal = prof.causal_lm.languages if prof.causal_lm else ()
        task_only = (c for codes in prof.task_languages.values() for c in codes)
        for code in (
            *prof.languages,
            *causal,
            *(prof.base_model.languages if prof.base_model else ()),
            *(prof.base_model.vocabulary if prof.base_model else ()),
            *task_only,
        ):
            if not reg.languages[code].demo:
                demo = ", ".join(k for k, v in reg.languages.items() if v.demo)
                raise ParamError(
                    f"{file}: `languages`: {code!r} is not a demo language; demo mode has {demo}"
                )
    for key in prof.data.quoting:
        check_name(key, QUOTED_DATASETS, file, f"data.quoting.{key}", "dataset with TSV files")
    _check_lengths(prof, reg, file)
    check_slurm(prof.slurm, file)
    if prof.data.mode == "local":
        for key, why in datasets_needed(prof).items():
            value = getattr(prof.data, key)
            if value == "hub" or value.startswith(("http://", "https://")):
                what = "a URL" if value != "hub" else "`hub` (or missing)"
                raise ParamError(
                    f"{file}: `data.{key}`: `data.mode` is local but `data.{key}` is {what}; give the local path "
                    f"of the data ({why})"
                )
    return prof, reg


def _check_lengths(prof: Profile, reg: Registry, file: str) -> None:
    """Every `max_length` of the profile fits the positions of the tiny models it trains or evaluates."""
    causal, llms = prof.causal_lm, prof.llm_baselines
    encoders = {m: reg.models[m].tiny for m in prof.models if reg.models[m].tiny}
    decoders = [*(causal.models if causal else ()), *(reg.llms[x].tiny for x in (llms.llms if llms else ()))]
    decoders = {m: reg.models[m].tiny for m in decoders if m and reg.models[m].tiny}
    lengths = [("pppl", prof.pppl.max_length, encoders)]
    lengths += [(f"adapt.{k}", v.max_length, encoders) for k, v in prof.adapt.items()]
    lengths += [(f"full_finetuning.{k}", v.max_length, encoders) for k, v in prof.full_finetuning.items()]
    lengths += [(f"finetune.{k}", v.max_length, encoders) for k, v in prof.finetune.items()]
    if prof.base_model is not None:  # decoders pre-train with it unless causal_lm.pretrain is given
        pretrained = encoders | (decoders if causal is None or causal.pretrain is None else {})
        lengths.append(("base_model.train", prof.base_model.train.max_length, pretrained))
    if causal is not None:
        lengths += [(f"causal_lm.adapt.{k}", v.max_length, decoders) for k, v in causal.adapt.items()]
        if causal.pretrain is not None:
            lengths.append(("causal_lm.pretrain", causal.pretrain.max_length, decoders))
    for where, length, tiny in lengths:
        for model, sizes in tiny.items():
            if length > sizes.max_position - 2:
                raise ParamError(
                    f"{file}: `{where}.max_length`: {length} exceeds the {sizes.max_position - 2} tokens of tiny "
                    f"model {model} (params/models.yaml `max_position` {sizes.max_position} minus 2)"
                )


def task_languages(prof: Profile, task: str) -> tuple[str, ...]:
    """The languages `task` runs on: `task_languages.<task>`, else the profile's `languages`."""
    return prof.task_languages.get(task, prof.languages)


def datasets_needed(prof: Profile) -> dict[str, str]:
    """`data.*` key → which part of the profile reads that dataset (mode local or hub)."""
    needed: dict[str, str] = {}
    sources = {*prof.sources, *prof.full_finetuning, *(prof.causal_lm.adapt if prof.causal_lm else ())}
    for source in SOURCES:
        if source in sources:
            needed[source] = f"the {source} language adapters"
    if prof.base_model is not None:
        needed.setdefault("glotcc", "the base models' pre-training text")
    if prof.languages and prof.models:
        needed["flores"] = "pseudo-perplexity"
    llm_tasks = prof.llm_baselines.tasks if prof.llm_baselines else ()
    for task in dict.fromkeys((*prof.tasks, *llm_tasks)):
        needed[TASK_DATA[task]] = f"task {task}"
    return needed


def _check_task_languages(prof: Profile, reg: Registry, file: str) -> None:
    for task, codes in prof.task_languages.items():
        check_name(task, prof.tasks, file, f"task_languages.{task}", "task of this profile")
        for i, code in enumerate(codes):
            check_name(code, reg.languages, file, f"task_languages.{task}[{i}]", "language")
            if code in codes[:i]:
                raise ParamError(f"{file}: `task_languages.{task}[{i}]`: {code!r} is listed twice")
            if code not in prof.languages and "none/none" not in prof.task_configs.get(task, ("none/none",)):
                raise ParamError(
                    f"{file}: `task_languages.{task}[{i}]`: {code!r} is not in `languages`, so it runs only on the "
                    f"base model (none/none), which `task_configs.{task}` leaves out"
                )


def _check_causal_lm(settings: CausalLMSettings, reg: Registry, file: str) -> None:
    for i, model in enumerate(settings.models):
        check_name(model, reg.models, file, f"causal_lm.models[{i}]", "model")
        if reg.models[model].architecture != "llama":
            raise ParamError(
                f"{file}: `causal_lm.models[{i}]`: {model!r} is not a decoder (architecture llama)"
            )
    for i, code in enumerate(settings.languages):
        check_name(code, reg.languages, file, f"causal_lm.languages[{i}]", "language")
    for i, adapter in enumerate(settings.adapters):
        check_name(adapter, reg.adapters, file, f"causal_lm.adapters[{i}]", "adapter")
    if not settings.adapt:
        raise ParamError(f"{file}: `causal_lm.adapt`: give training settings for at least one source")
    for key in settings.adapt:
        check_name(key, SOURCES, file, f"causal_lm.adapt.{key}", "source")
