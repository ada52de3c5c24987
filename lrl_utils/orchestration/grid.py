"""Expand a profile into the grid of run specs, each with its upstream runs.

The same builder methods serve the runner (the whole grid) and a notebook opened by hand (one run and
its inputs), so both always compute the same spec and hash.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import cached_property

from lrl_utils.adapters import settings
from lrl_utils.config import paths
from lrl_utils.config.params import ParamError, check_name, to_dict
from lrl_utils.config.profiles import load_profile, task_languages
from lrl_utils.config.specs import (
    FFT,
    STAGES,
    AdaptSpec,
    BaseModelSpec,
    FinetuneSpec,
    LLMSpec,
    PPPLSpec,
    PreprocessSpec,
    ReportSpec,
    Spec,
)
from lrl_utils.config.train_settings import TaskTrainConfig


class Grid:
    """The runs of one profile. Builders return specs; `expand()` lists them all in dependency order."""

    def __init__(self, profile: str, check_adapters: bool = True):
        self.name = profile
        load = settings.load_profile if check_adapters else load_profile  # the former imports torch
        self.profile, self.registry = load(profile)

    # -- data locations ------------------------------------------------------------------------
    @cached_property
    def world(self) -> str | None:
        """The demo world folder (relative to the root), or None outside demo mode."""
        if self.profile.data.mode != "demo":
            return None
        from lrl_utils.demo.config import world_config  # light import: the standard library only

        config = world_config(self.profile.data)
        return paths.relative(paths.data_dir() / "demo_world" / f"world-{config.hash()}")

    def location(self, kind: str) -> str:
        """Where dataset `kind` (a `data.*` key) is read from, as stored in specs: the demo world's folder, `hub`,
        or the profile's local path (`paths.data_path`); mode local never falls back to the hub."""
        if self.world is not None:
            return {
                "conceptnet": f"{self.world}/conceptnet/conceptnet-assertions-5.7.0.csv.gz",
                "glotcc": f"{self.world}/glotcc",
                "flores": f"{self.world}/flores200_dataset",
                "sib200": f"{self.world}/sib200",
                "wikiann": f"{self.world}/wikiann",
                "sentiment": f"{self.world}/sentiment",
            }[kind]
        value = getattr(self.profile.data, kind)
        if self.profile.data.mode == "local" and (
            value == "hub" or value.startswith(("http://", "https://"))
        ):
            raise ParamError(
                f"profile {self.name}: `data.{kind}`: `data.mode` is local but `data.{kind}` is {value!r}, not a path"
            )
        return paths.data_path(value)

    def _lang(self, code: str):
        check_name(code, self.registry.languages, "run request", "language", "language")
        return self.registry.languages[code]

    # -- builders ------------------------------------------------------------------------------
    def preprocess(self, language: str, source: str) -> PreprocessSpec:
        lang = self._lang(language)
        return PreprocessSpec(
            language=language,
            source=source,
            code=lang.iso2 if source == "conceptnet" else lang.glotcc,
            location=self.location(source),
            world=self.world,
            max_train_bytes=self.profile.data.max_train_bytes,
            max_val_bytes=self.profile.data.max_val_bytes,
            max_bad_fraction=self.profile.data.max_bad_fraction,
            paper_compat=self.profile.data.paper_compat,
        )

    def base_model(self, model: str) -> BaseModelSpec:
        m = self.registry.models[model]
        if m.tiny is None or self.profile.base_model is None:
            raise ParamError(f"model {model!r} is a hub model ({m.hub_id}); it has no base_model run")
        settings = self.profile.base_model
        return BaseModelSpec(
            model=model,
            architecture=m.architecture,
            **to_dict(m.tiny),  # the sizes: a BaseModelSpec is a TinyModel
            corpora=tuple(self.preprocess(code, "glotcc").folder() for code in settings.languages),
            shares=tuple(settings.shares.get(code, 1.0) for code in settings.languages),
            train=self._pretrain_settings(m.architecture),
            vocabulary_corpora=tuple(
                self.preprocess(code, "glotcc").folder() for code in settings.vocabulary
            ),
        )

    def _pretrain_settings(self, architecture: str):
        p = self.profile
        if architecture != "llama":
            return replace(p.base_model.train, objective="mlm")
        own = p.causal_lm.pretrain if p.causal_lm is not None else None
        return replace(own or p.base_model.train, objective="clm")

    def model_ref(self, model: str) -> str:
        m = self.registry.models[model]
        return m.hub_id if m.hub_id else self.base_model(model).folder()

    def _model_language(self, model: str, language: str) -> dict[str, str]:
        """The fields an adapt, pppl or finetune spec starts with: the model, where it is loaded from, the language."""
        return {"model": model, "model_ref": self.model_ref(model), "language": language}

    def _adapter_run(self, model: str, language: str, source: str, adapter: str) -> str | None:
        """The adapt run folder of a language adapter (or FFT model) an evaluation loads; None without one."""
        return self.adapt(model, language, source, adapter).folder() if adapter != "none" else None

    def adapt(self, model: str, language: str, source: str, adapter: str) -> AdaptSpec:
        p = self.profile
        if adapter == FFT:
            if source not in p.full_finetuning:
                raise ParamError(f"profile {self.name}: no `full_finetuning.{source}` settings")
            config, overrides, train = FFT, {}, p.full_finetuning[source]
        else:
            setting = self.registry.adapters[adapter]
            config = setting.config
            overrides = {**setting.overrides, **p.adapter_overrides.get(adapter, {})}
            if self.registry.models[model].architecture == "llama":  # causal-LM language adapters
                if p.causal_lm is None or source not in p.causal_lm.adapt:
                    raise ParamError(f"profile {self.name}: no `causal_lm.adapt.{source}` settings")
                train = replace(p.causal_lm.adapt[source], objective="clm")
            else:
                train = p.adapt[source]
        return AdaptSpec(
            **self._model_language(model, language),
            source=source,
            adapter=adapter,
            adapter_config=config,
            adapter_overrides=overrides,
            corpus=self.preprocess(language, source).folder(),
            train=train,
            head_path=p.head_path,
        )

    def pppl(self, model: str, language: str, source: str = "none", adapter: str = "none") -> PPPLSpec:
        return PPPLSpec(
            **self._model_language(model, language),
            flores_code=self._lang(language).flores,
            devtest=self.location("flores"),
            world=self.world,
            source=source,
            adapter=adapter,
            adapter_run=self._adapter_run(model, language, source, adapter),
            max_sentences=self.profile.pppl.max_sentences,
            max_length=self.profile.pppl.max_length,
            quoting=self.profile.data.quoting.get("flores"),
            samples=self.profile.data.samples,
        )

    def finetune(
        self, model: str, language: str, task: str, source: str = "none", adapter: str = "none", seed: int = 1
    ) -> FinetuneSpec:
        if source == "fusion":  # NER on Fuse(ConceptNet adapter, GlotCC adapter), both of method `adapter`
            run = self.adapt(model, language, "conceptnet", adapter).folder()
            fusion_run = self.adapt(model, language, "glotcc", adapter).folder()
        else:
            run, fusion_run = self._adapter_run(model, language, source, adapter), None
        config, location = self._task_data(task, language)
        return FinetuneSpec(
            **self._model_language(model, language),
            task=task,
            flores_code=config,
            dataset=self.location(location),
            world=self.world,
            source=source,
            adapter=adapter,
            adapter_run=run,
            fusion_run=fusion_run,
            seed=seed,
            train=self.profile.finetune[task],
            quoting=self.profile.data.quoting.get(location),
            max_bad_fraction=self.profile.data.max_bad_fraction,
        )

    def llm(self, llm: str, language: str, task: str, shots: int = 0) -> LLMSpec:
        check_name(llm, self.registry.llms, "run request", "llm", "LLM")
        settings = self.profile.llm_baselines
        if settings is None:
            raise ParamError(f"profile {self.name}: no `llm_baselines` section")
        m = self.registry.llms[llm]
        config, location = self._task_data(task, language)
        # missing splits: the rule of the task's fine-tuning runs, so that both test the same items
        rule = self.profile.finetune.get(task, TaskTrainConfig())
        if m.backend == "openai":
            ref = m.model
            # how the endpoint is reached: request timeout, retries and backoff, parallel requests
            run_with = {
                k: getattr(m, k)
                for k in ("timeout", "max_retries", "initial_backoff", "max_backoff", "concurrency")
            }
        else:
            ref = m.hub_id if m.tiny is None else self.base_model(m.tiny).folder()
            run_with = {"device_map": m.device_map, "dtype": m.dtype}  # how the local model is loaded
        return LLMSpec(
            llm=llm,
            backend=m.backend,
            model_ref=ref,
            base_url=m.base_url,
            api_key_env=m.api_key_env if m.backend == "openai" else None,
            chat=m.chat,
            **run_with,
            language=language,
            task=task,
            flores_code=config,
            dataset=self.location(location),
            world=self.world,
            missing_splits=rule.missing_splits,
            split_seed=rule.split_seed,
            template=settings.template,
            shots=shots,
            shot_seed=settings.shot_seed,
            max_items=settings.max_items,
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            quoting=self.profile.data.quoting.get(location),
            max_bad_fraction=self.profile.data.max_bad_fraction,
        )

    def _task_data(self, task: str, language: str) -> tuple[str, str]:
        """(the dataset's config, the data location kind) of a task."""
        lang = self._lang(language)
        return {
            "tc": (lang.flores, "sib200"),
            "sa": (lang.sentiment or language, "sentiment"),  # demo languages: their folder under sentiment/
            "ner": (lang.iso2, "wikiann"),
        }[task]

    def _llm_runs(self) -> list[LLMSpec]:
        b = self.profile.llm_baselines
        if b is None:
            return []
        langs = b.languages or self.profile.languages
        return [self.llm(m, lang, t, k) for m in b.llms for lang in langs for t in b.tasks for k in b.shots]

    def report(self, kind: str) -> ReportSpec:
        runs = [*self._evaluations(), *self._causal_adapts(), *self._llm_runs()]
        inputs = tuple(s.folder() for s in runs)
        tolerances = self.profile.report
        return ReportSpec(
            kind=kind,
            profile=self.name,
            inputs=inputs,
            f1_tolerance=tolerances.f1_tolerance,
            pppl_tolerance=tolerances.pppl_tolerance,
            loss_tolerance=tolerances.loss_tolerance,
        )

    # -- the whole grid --------------------------------------------------------------------------
    def _configs(self) -> list[tuple[str, str]]:
        """(source, adapter) pairs: the base model first, then every source × adapter."""
        p = self.profile
        return (
            [("none", "none")]
            + [
                (s, a)
                for s in p.sources
                for a in p.adapters
                if not p.adapter_configs or f"{s}/{a}" in p.adapter_configs
            ]
            + [(s, FFT) for s in p.full_finetuning]
        )

    def _causal_adapts(self) -> list[AdaptSpec]:
        """Causal-LM language adapters of the decoder models (no PPPL or task runs read them yet)."""
        c = self.profile.causal_lm
        if c is None:
            return []
        return [
            self.adapt(m, lang, s, a)
            for m in c.models
            for lang in c.languages
            for s in c.adapt
            for a in c.adapters
        ]

    def _evaluations(self) -> list[Spec]:
        """PPPL runs of the profile's languages and the task runs of each task's languages (`task_languages`): every
        configuration (or those of `task_configs`), the base model only for a task-only language."""
        p = self.profile
        langs = dict.fromkeys((*p.languages, *(c for t in p.tasks for c in task_languages(p, t))))
        specs: list[Spec] = []
        for model in p.models:
            for lang in langs:
                if lang in p.languages:
                    specs += [self.pppl(model, lang, s, a) for s, a in self._configs()]
                for task in p.tasks:
                    if lang not in task_languages(p, task):
                        continue
                    configs = self._configs() + ([("fusion", a) for a in p.fusion] if task == "ner" else [])
                    if lang not in p.languages:  # task-only: no language adapters
                        configs = [("none", "none")]
                    # a subset of the configurations for this task (in this language)
                    only = p.task_configs.get(f"{task}.{lang}", p.task_configs.get(task))
                    if only is not None:
                        configs = [(s, a) for s, a in configs if f"{s}/{a}" in only]
                    for s, a in configs:
                        specs += [self.finetune(model, lang, task, s, a, seed) for seed in p.seeds]
        return specs

    def expand(self) -> list[Spec]:
        """Every run of the profile, upstream runs before the runs that read them."""
        p = self.profile
        specs: list[Spec] = []
        causal = self._causal_adapts()
        needed: dict[str, set[str]] = {}
        for lang in p.languages:
            needed.setdefault(lang, set()).update(p.sources, p.full_finetuning)
        for lang in (*p.base_model.languages, *p.base_model.vocabulary) if p.base_model else ():
            needed.setdefault(lang, set()).add("glotcc")
        for spec in causal:
            needed.setdefault(spec.language, set()).add(spec.source)
        for lang, sources in needed.items():
            specs += [self.preprocess(lang, s) for s in ("conceptnet", "glotcc") if s in sources]
        llm_runs = self._llm_runs()
        for spec in llm_runs:  # the data of a task are read directly; no preprocessing needed
            needed.setdefault(spec.language, set())
        tiny_llms = [self.registry.llms[m].tiny for m in (p.llm_baselines.llms if p.llm_baselines else ())]
        models = [*p.models, *(p.causal_lm.models if p.causal_lm else ()), *(t for t in tiny_llms if t)]
        specs += [
            self.base_model(m) for m in dict.fromkeys(models) if self.registry.models[m].tiny is not None
        ]
        for model in p.models:
            for lang in p.languages:
                specs += [self.adapt(model, lang, s, a) for s, a in self._configs()[1:]]
        specs += causal
        specs += self._evaluations()
        specs += llm_runs
        specs += [self.report("tables"), self.report("figures")]
        order = {stage: i for i, stage in enumerate(STAGES)}
        specs.sort(key=lambda s: order[s.stage])  # stable: keeps the loop order within a stage
        return list({s.folder(): s for s in specs}.values())


def dry_run_lines(specs: list[Spec], done: set[str] | None = None) -> list[str]:
    """One line per run, then the count per stage, then `N runs`."""
    done = done or set()
    lines = [f"{'done ' if s.folder() in done else 'todo '} {s.folder()}" for s in specs]
    counts = Counter(s.stage for s in specs)
    lines.append("")
    lines += [f"{stage:>11}: {counts[stage]}" for stage in STAGES if counts[stage]]
    lines.append(f"{len(specs)} runs")
    return lines
