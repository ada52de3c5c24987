"""Parameter validation: every error is one line naming the file and the key, before any compute."""

from __future__ import annotations

import pytest
import yaml
from conftest import tiny_profile

from lrl_utils.adapters.settings import load_profile, load_registry  # with the checks against `adapters`
from lrl_utils.config.params import ParamError
from lrl_utils.config.profiles import available_profiles
from lrl_utils.orchestration.runner import main


def error_of(project, name, profile) -> str:
    project.add_profile(name, profile)
    with pytest.raises(ParamError) as err:
        load_profile(name)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"params/profiles/{name}.yaml" in msg
    return msg


def test_shipped_profiles_and_registries_validate():
    reg = load_registry()
    assert len([c for c, lang in reg.languages.items() if lang.paper and not lang.demo]) == 30
    assert {"qaa", "qab", "qac"} <= set(reg.languages)
    assert reg.languages["qac"].seen_by == ()
    assert {"demo", "paper"} <= set(available_profiles())
    for name in ("demo", "paper"):
        load_profile(name)


def test_unknown_key_names_file_and_key(project):
    prof = tiny_profile()
    prof["adapt"]["glotcc"]["max_stepz"] = 5
    msg = error_of(project, "bad", prof)
    assert "`adapt.glotcc.max_stepz`" in msg and "did you mean `adapt.glotcc.max_steps`" in msg


def test_wrong_type(project):
    prof = tiny_profile(seeds=["one"])
    assert "`seeds[0]`: expected int" in error_of(project, "bad", prof)
    prof = tiny_profile()
    prof["adapt"]["glotcc"]["max_steps"] = 1.5
    assert "`adapt.glotcc.max_steps`: expected int, got float" in error_of(project, "bad2", prof)
    prof = tiny_profile()
    prof["data"]["mode"] = "cloud"
    assert "`data.mode`: expected 'demo' | 'local' | 'hub'" in error_of(project, "bad3", prof)


def test_unknown_names_list_close_matches(project):
    msg = error_of(project, "b1", tiny_profile(languages=["qax"]))
    assert "unknown language 'qax'" in msg and msg.endswith(
        "(a new language is an entry of params/languages.yaml)"
    )
    msg = error_of(project, "b2", tiny_profile(models=["tiny-xlm"]))
    assert "unknown model 'tiny-xlm'" in msg and "tiny-xlmr" in msg
    assert "unknown adapter 'seqbn'" in error_of(project, "b3", tiny_profile(adapters=["seqbn"]))


def test_cross_checks(project):
    msg = error_of(project, "b1", tiny_profile(sources=["conceptnet"]))
    assert "missing key `adapt.conceptnet`" in msg
    assert "not a demo language" in error_of(project, "b2", tiny_profile(languages=["mlt"]))
    prof = tiny_profile()
    del prof["base_model"]
    assert "missing key `base_model`" in error_of(project, "b3", prof)
    prof = tiny_profile()
    prof["base_model"]["vocabulary"] = ["qab", "qaz"]
    assert "`base_model.vocabulary[1]`" in error_of(project, "b4", prof)
    prof["base_model"]["vocabulary"] = ["qab", "mlt"]
    assert "not a demo language" in error_of(project, "b5", prof)


def test_fft_and_causal_lm_sections_are_checked(project):
    train = tiny_profile()["adapt"]["glotcc"]
    msg = error_of(project, "c1", tiny_profile(full_finetuning={"wiki": train}))
    assert "`full_finetuning.wiki`: unknown source 'wiki'" in msg
    msg = error_of(project, "c2", tiny_profile(models=["tiny-xlmr", "tiny-llama"]))
    assert "'tiny-llama' is a decoder; list it under `causal_lm.models`" in msg
    causal = {"models": ["tiny-xlmr"], "languages": ["qac"], "adapt": {"glotcc": train}}
    msg = error_of(project, "c3", tiny_profile(causal_lm=causal))
    assert "`causal_lm.models[0]`: 'tiny-xlmr' is not a decoder" in msg
    msg = error_of(project, "c4", tiny_profile(causal_lm={**causal, "models": ["tiny-llama"], "adapt": {}}))
    assert "`causal_lm.adapt`: give training settings" in msg
    msg = error_of(project, "c5", tiny_profile(head_path="flex"))
    assert "`head_path`: expected 'inverse' | 'paper_compat'" in msg
    ok = tiny_profile(full_finetuning={"glotcc": train}, causal_lm={**causal, "models": ["tiny-llama"]})
    project.add_profile("ok", ok)
    prof, _ = load_profile("ok")
    assert prof.causal_lm.adapters == ("seq_bn_inv",) and set(prof.full_finetuning) == {"glotcc"}


def test_registry_errors_name_the_file(project):
    path = project.root / "params" / "models.yaml"
    path.write_text(path.read_text() + "  broken: {architecture: bert, display: x, hub_id: a/b, layers: 3}\n")
    with pytest.raises(ParamError, match=r"params/models.yaml: unknown key `models.broken.layers`"):
        load_registry()


@pytest.mark.parametrize(
    ("key", "value", "form"),
    [
        ("flores", "swh", "xxx_Scrp"),
        ("glotcc", "swh_Latn", "xxx-Scrp"),
        ("iso2", "s/w", "ISO 639-1"),
        ("iso2", "", "ISO"),
    ],
)
def test_language_codes_of_the_wrong_form_name_the_key(project, key, value, form):
    path = project.root / "params/languages.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["languages"]["swh"][key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(
        ParamError, match=rf"^params/languages.yaml: `languages.swh.{key}`: expected .*{form}"
    ):
        load_registry()


@pytest.mark.parametrize(("key", "values"), [("languages", ["qab", "qag", "qab"]), ("seeds", [1, 2, 1])])
def test_a_value_listed_twice_names_the_key(project, key, values):
    project.add_profile("twice", tiny_profile(**{key: values}))
    with pytest.raises(ParamError, match=rf"^params/profiles/twice.yaml: `{key}\[2\]`: .* is listed twice$"):
        load_profile("twice")


def test_invalid_yaml_reports_line(project):
    project.edit_yaml("params/profiles/broken.yaml", "description: x\nlanguages: [qac\n")
    with pytest.raises(ParamError, match=r"params/profiles/broken.yaml:\d+: invalid YAML"):
        load_profile("broken")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"description: R\xe9al\nlanguages: [qab]\n", r"broken.yaml:1: not valid UTF-8 \(byte 0xe9\)"),
        (b"description: x\nlanguages: [q\x00ab]\n", r"broken.yaml:2: invalid YAML \(character U\+0000"),
    ],
)
def test_unreadable_yaml_is_one_line_naming_file_and_line(project, content, message):
    (project.root / "params/profiles/broken.yaml").write_bytes(content)
    with pytest.raises(ParamError, match=message) as err:
        load_profile("broken")
    assert "\n" not in str(err.value) and str(err.value).startswith("params/profiles/broken.yaml:")
    (project.root / "params/languages.yaml").write_bytes(content)  # a registry file too
    with pytest.raises(ParamError, match=r"^params/languages.yaml:\d+: "):
        load_registry()


def test_yaml_with_a_bom_reads_and_a_folder_is_an_error(project):
    path = project.root / "params/profiles/bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(tiny_profile()).encode())
    assert list(load_profile("bom")[0].languages) == tiny_profile()["languages"]
    (project.root / "params/profiles/folder.yaml").mkdir()
    with pytest.raises(ParamError, match=r"^params/profiles/folder.yaml: cannot read"):
        load_profile("folder")


def test_cli_reports_one_line_and_exit_2(project, capsys):
    project.add_profile("bad", tiny_profile(languages=["xx"]))
    assert main(["--profile", "bad", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: params/profiles/bad.yaml:") and "\n" not in err
    assert main(["--profile", "nope", "--dry-run"]) == 2


# --------------------------------------------------------------------------------------------------
# Data-size statistics of the language registry (SPEC §1 and §8.1)


def test_language_statistics_sample_values():
    langs = load_registry().languages
    tha, zsm, mlt, yor = langs["tha"], langs["zsm"], langs["mlt"], langs["yor"]
    assert (tha.joshi_class, tha.wiki_gb, tha.cc100_gb, tha.cc100_docs) == (3, 1.2912, 85.2361, 318507542)
    assert (zsm.conceptnet_sentences, zsm.conceptnet_mb, zsm.glotcc_docs, zsm.glotcc_mb) == (
        175246,
        6.21,
        8024827,
        1022.01,
    )
    assert mlt.cc100_gb is None and mlt.cc100_docs is None and langs["bod"].cc100_gb is None
    assert (mlt.wiki_docs, mlt.wiki_gb, mlt.sentiment_train) == (5743, 0.0472, 595)
    assert (yor.wiki_gb, yor.cc100_gb, yor.joshi_class) == (0.026, 0.0074, 2)
    assert (langs["slv"].ner_train, langs["slv"].ner_validation, langs["slv"].ner_test) == (
        15000,
        10000,
        10000,
    )
    assert (langs["zsm"].ner_validation, langs["npi"].ner_train, langs["swh"].sentiment_train) == (
        1000,
        100,
        738,
    )
    assert langs["mar"].glotcc_mb == 157.3 and langs["ckb"].joshi_class == 0
    stats = ("joshi_class", "conceptnet_sentences", "glotcc_mb", "wiki_gb", "sentiment_train", "ner_test")
    for code, lang in langs.items():
        values = [getattr(lang, name) for name in stats]
        assert (
            all(v is None for v in values)
            if not lang.paper or lang.demo
            else all(v is not None for v in values)
        ), code


def _spec_table(spec: list[str], first_header: str) -> list[list[str]]:
    start = next(i for i, line in enumerate(spec) if line.startswith(first_header))
    rows = []
    for line in spec[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_language_statistics_equal_the_spec_tables(shared):
    spec_file = shared.parent / "paper" / "SPEC.md"
    if not spec_file.is_file():
        pytest.skip(f"{spec_file} not found")
    spec = spec_file.read_text(encoding="utf-8").splitlines()
    by_flores = {lang.flores: lang for lang in load_registry().languages.values()}

    def number(cell: str, kind: type):
        return None if cell == "–" else kind(cell)

    sizes = _spec_table(spec, "| ISO2 | FLORES | Lang")  # §8.1
    assert len(sizes) == 30
    for iso2, flores, _, cn, cn_mb, glot, glot_mb, joshi, wd, wgb, ccd, ccgb in sizes:
        lang = by_flores[flores]
        assert lang.iso2 == iso2
        got = (
            lang.conceptnet_sentences,
            lang.conceptnet_mb,
            lang.glotcc_docs,
            lang.glotcc_mb,
            lang.joshi_class,
        )
        assert got == (int(cn), float(cn_mb), int(glot), float(glot_mb), int(joshi)), flores
        got = (lang.wiki_docs, lang.wiki_gb, lang.cc100_docs, lang.cc100_gb)
        assert got == (int(wd), float(wgb), number(ccd, int), number(ccgb, float)), flores
    languages = _spec_table(spec, "| Language | ISO639-3")  # §1
    assert len(languages) == 30
    for row in languages:
        lang = by_flores[row[4]]
        assert lang.sentiment == row[5].strip("*") and lang.sentiment_train == int(row[6])
        assert (lang.ner_train, lang.ner_validation, lang.ner_test) == tuple(map(int, row[7].split("/")))
        assert lang.joshi_class == int(row[12])


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("wiki_gb: 1.2912", "wiki_gb: -1.2912", "`languages.tha.wiki_gb`: must be >= 0, got -1.2912"),
        ("wiki_gb: 1.2912", "wiki_gb: .nan", "`languages.tha.wiki_gb`: must be >= 0, got nan"),
        ("ner_test: 10000}", "ner_test: -1}", "`languages.tha.ner_test`: must be >= 0, got -1"),
        ("joshi_class: 3", "joshi_class: 6", "`languages.tha.joshi_class`: must be >= 0 and <= 5, got 6"),
        ("ner_train: 20000", "ner_train: many", "`languages.tha.ner_train`: expected int | null, got str"),
        (
            "ner_train: 20000",
            "ner_train: 20000.0",
            "`languages.tha.ner_train`: expected int | null, got float",
        ),
        ("cc100_gb: 85.2361", "cc100_gb: [85]", "`languages.tha.cc100_gb`: expected float | null, got list"),
        (
            "glotcc_mb: 977.68",
            "glotcc_mb: true",
            "`languages.tha.glotcc_mb`: expected float | null, got bool",
        ),
        ("joshi_class: 3", "joshi_clas: 3", "unknown key `languages.tha.joshi_clas` (did you mean"),
    ],
)
def test_language_statistics_are_validated(project, old, new, message):
    path = project.root / "params" / "languages.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  tha:")
    assert old in text[start : start + 600]
    path.write_text(text[:start] + text[start:].replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ParamError) as err:
        load_registry()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("params/languages.yaml: ") and message in msg


def test_llm_registry_and_baseline_section_are_checked(project):
    llms = project.root / "params" / "llms.yaml"
    text = llms.read_text()
    project.edit_yaml("params/llms.yaml", text + "  broken: {backend: openai, display: x, hub_id: a/b}\n")
    with pytest.raises(ParamError, match=r"`llms.broken`: a openai LLM needs exactly one of model"):
        load_registry()
    project.edit_yaml("params/llms.yaml", text)
    msg = error_of(project, "l1", tiny_profile(llm_baselines={"llms": ["gpt-5"], "tasks": ["tc"]}))
    assert "`llm_baselines.llms[0]`: unknown LLM 'gpt-5'" in msg
    msg = error_of(
        project, "l2", tiny_profile(llm_baselines={"llms": ["tiny-llama"], "tasks": ["tc"], "shots": [-1]})
    )
    assert "`llm_baselines.shots[0]`: must be >= 0, got -1" in msg
    assert load_registry().llms["deepseek-chat"].api_key_env == "DEEPSEEK_API_KEY"


# --------------------------------------------------------------------------------------------------
# Every setting checked before any compute: ranges, finiteness, the innermost key, adapter settings, duplicate
# keys, plain names (issue 13, item 5)

NAN, INF = float("nan"), float("inf")  # written by yaml.safe_dump as `.nan` / `.inf`


def full_profile() -> dict:
    """tiny_profile with every optional section: causal-LM adapters, LLM baselines, shares, FFT, overrides."""

    def train() -> dict:  # a fresh dict per section (yaml.safe_dump would write a shared one as an alias)
        return dict(tiny_profile()["adapt"]["glotcc"])

    prof = tiny_profile(
        causal_lm={
            "models": ["tiny-llama"],
            "languages": ["qac"],
            "adapt": {"glotcc": train()},
            "pretrain": train(),
        },
        llm_baselines={"llms": ["tiny-llama"], "tasks": ["tc"], "shots": [0, 3]},
        full_finetuning={"glotcc": train()},
        adapter_overrides={"seq_bn": {"reduction_factor": 8}},
    )
    prof["base_model"]["shares"] = {"qab": 0.5}
    return prof


def with_value(prof: dict, key: str, value) -> dict:
    """`prof` with `value` at dotted `key` (`a.b[1]` indexes a list)."""
    *parents, last = key.replace("[", ".[").split(".")
    node = prof
    for part in parents:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return prof


def test_full_profile_is_valid(project):
    project.add_profile("full", full_profile())
    prof, _ = load_profile("full")
    assert prof.causal_lm.pretrain.learning_rate == 1e-3 and prof.llm_baselines.shots == (0, 3)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("adapt.glotcc.max_steps", 0, "must be >= 1, got 0"),
        ("adapt.glotcc.batch_size", -4, "must be >= 1, got -4"),
        ("adapt.glotcc.learning_rate", 0.0, "must be > 0, got 0.0"),
        ("adapt.glotcc.learning_rate", -1e-3, "must be > 0, got -0.001"),
        ("adapt.glotcc.learning_rate", NAN, "must be > 0, got nan"),
        ("adapt.glotcc.learning_rate", INF, "must be a finite number, got inf"),
        ("adapt.glotcc.learning_rate", "inf", "must be a finite number, got inf"),
        ("adapt.glotcc.mlm_probability", 1.0, "must be > 0 and < 1, got 1.0"),
        ("adapt.glotcc.mlm_probability", 0, "must be > 0 and < 1, got 0"),
        ("adapt.glotcc.weight_decay", -0.1, "must be >= 0, got -0.1"),
        ("adapt.glotcc.warmup_steps", -1, "must be >= 0, got -1"),
        ("adapt.glotcc.eval_every", 0, "must be >= 1, got 0"),
        ("adapt.glotcc.eval_batches", 0, "must be >= 1, got 0"),
        ("adapt.glotcc.checkpoint_every", 0, "must be >= 1, got 0"),
        ("adapt.glotcc.gradient_accumulation_steps", 0, "must be >= 1, got 0"),
        ("adapt.glotcc.max_length", 2, "must be >= 8, got 2"),
        ("adapt.glotcc.seed", -1, "must be >= 0 and <= 4294967295, got -1"),
        ("base_model.train.learning_rate", NAN, "must be > 0, got nan"),
        ("base_model.shares.qab", 0.0, "must be > 0 and <= 1, got 0.0"),
        ("base_model.shares.qab", 1.5, "must be > 0 and <= 1, got 1.5"),
        ("full_finetuning.glotcc.max_steps", 0, "must be >= 1, got 0"),
        ("causal_lm.pretrain.learning_rate", -1.0, "must be > 0, got -1.0"),
        ("causal_lm.pretrain.learning_rate", "fast", "expected float, got str 'fast'"),
        ("causal_lm.adapt.glotcc.mlm_probability", 1.2, "must be > 0 and < 1, got 1.2"),
        ("finetune.tc.epochs", 0, "must be >= 1, got 0"),
        ("finetune.tc.epochs", "many", "expected int, got str 'many'"),
        ("finetune.tc.batch_size", 0, "must be >= 1, got 0"),
        ("finetune.tc.learning_rate", INF, "must be a finite number, got inf"),
        ("finetune.tc.warmup_ratio", 1.0, "must be >= 0 and < 1, got 1.0"),
        ("finetune.tc.weight_decay", -0.01, "must be >= 0, got -0.01"),
        ("finetune.tc.max_length", 0, "must be >= 8, got 0"),
        ("pppl.max_sentences", 0, "must be >= 1, got 0"),
        ("pppl.max_length", 1, "must be >= 8, got 1"),
        ("data.max_bad_fraction", 1.5, "must be >= 0 and <= 1, got 1.5"),
        ("data.max_bad_fraction", NAN, "must be >= 0 and <= 1, got nan"),
        ("data.max_train_bytes", 0, "must be >= 1, got 0"),
        ("data.max_val_bytes", -1, "must be >= 1, got -1"),
        ("data.world_seed", -3, "must be >= 0 and <= 4294967295, got -3"),
        ("data.world_web_names", 1.5, "must be >= 0 and <= 1, got 1.5"),
        ("data.world_mislabeled_relative", 0.6, "must be >= 0 and <= 0.5, got 0.6"),
        ("seeds[0]", -2, "must be >= 0 and <= 4294967295, got -2"),
        ("jobs", 0, "must be >= 1, got 0"),
        ("report.f1_tolerance", -0.1, "must be >= 0, got -0.1"),
        ("report.pppl_tolerance", INF, "must be a finite number, got inf"),
        ("report.loss_tolerance", NAN, "must be >= 0, got nan"),
        ("llm_baselines.shots[1]", -3, "must be >= 0, got -3"),
        ("llm_baselines.shots[1]", "x", "expected int, got str 'x'"),
        ("llm_baselines.shot_seed", -1, "must be >= 0 and <= 4294967295, got -1"),
        ("llm_baselines.max_items", 0, "must be >= 1, got 0"),
        ("llm_baselines.max_new_tokens", 0, "must be >= 1, got 0"),
        ("llm_baselines.batch_size", 0, "must be >= 1, got 0"),
    ],
)
def test_every_number_is_range_checked_at_its_innermost_key(project, key, value, message):
    msg = error_of(project, "bad", with_value(full_profile(), key, value))
    assert f"`{key}`: {message}" in msg
    assert "{" not in msg, "the message names the key, it does not print the section"


def test_max_length_fits_the_tiny_models(project):
    msg = error_of(project, "long", with_value(full_profile(), "finetune.tc.max_length", 200))
    assert "`finetune.tc.max_length`: 200 exceeds the 128 tokens of tiny model tiny-xlmr" in msg
    msg = error_of(project, "long2", with_value(full_profile(), "causal_lm.pretrain.max_length", 129))
    assert "`causal_lm.pretrain.max_length`: 129 exceeds the 128 tokens of tiny model tiny-llama" in msg
    project.add_profile("edge", with_value(full_profile(), "pppl.max_length", 128))
    assert load_profile("edge")[0].pppl.max_length == 128


def replace_in(project, rel: str, old: str, new: str) -> None:
    path = project.root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def registry_error(project, rel: str, old: str, new: str) -> str:
    replace_in(project, rel, old, new)
    with pytest.raises(ParamError) as err:
        load_registry()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{rel}:"), msg
    return msg


TINY_XLMR = "tiny: {vocab_size: 2000, hidden_size: 128, num_layers: 2, num_heads: 4, intermediate_size: 512"


@pytest.mark.parametrize(
    "rel, old, new, message",
    [
        ("params/models.yaml", TINY_XLMR, TINY_XLMR.replace("num_layers: 2", "num_layers: 0"),
         "`models.tiny-mbert.tiny.num_layers`: must be >= 1, got 0"),
        ("params/models.yaml", TINY_XLMR, TINY_XLMR.replace("hidden_size: 128", "hidden_size: wide"),
         "`models.tiny-mbert.tiny.hidden_size`: expected int, got str 'wide'"),
        ("params/models.yaml", TINY_XLMR, TINY_XLMR.replace("num_heads: 4", "num_heads: 3"),
         "`models.tiny-mbert.tiny.num_heads`: must divide hidden_size (128), got 3"),
        ("params/models.yaml", "max_position: 130", "max_position: 4",
         "`models.tiny-mbert.tiny.max_position`: must be >= 10, got 4"),
        ("params/llms.yaml", "\n  gpt-4o-mini: {", "\n  gpt-4o-mini: {timeout: 0, ",
         "`llms.gpt-4o-mini.timeout`: must be > 0, got 0"),
        ("params/llms.yaml", "\n  gpt-4o-mini: {", "\n  gpt-4o-mini: {initial_backoff: .inf, ",
         "`llms.gpt-4o-mini.initial_backoff`: must be a finite number, got inf"),
        ("params/languages.yaml", "wiki_gb: 1.2912", "wiki_gb: .inf",
         "`languages.tha.wiki_gb`: must be a finite number, got inf"),
    ],
)  # fmt: skip
def test_registry_numbers_are_checked(project, rel, old, new, message):
    assert message in registry_error(project, rel, old, new)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {reduction_factr: 8}}",
         "unknown key `adapters.seq_bn.overrides.reduction_factr` for adapter method 'seq_bn' (SeqBnConfig; "
         "did you mean `adapters.seq_bn.overrides.reduction_factor`?)"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {num_modules: 4}}",
         "unknown key `adapters.seq_bn.overrides.num_modules` for adapter method 'seq_bn'"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: lora}",
         "`adapters.seq_bn.config`: 'lora' is not a config of adapter method 'seq_bn', which builds on "
         "SeqBnConfig ('pfeiffer' or 'seq_bn')"),
        ("seq_bn_inv: {config: seq_bn_inv}", "seq_bn_inv: {config: seq_bn}",
         "`adapters.seq_bn_inv.config`: 'seq_bn' is not a config of adapter method 'seq_bn_inv'"),
        ("lora: {config: lora}", "lora: {config: lorra}",
         "`adapters.lora.config`: unknown `adapters` config 'lorra'; closest: lora"),
        ("lora: {config: lora}", "lora: {config: lora, overrides: {r: 8.5}}",
         "`adapters.lora.overrides.r`: expected int (LoRAConfig), got float 8.5"),
        ("lora: {config: lora}", "lora: {config: lora, overrides: {r: 0}}",
         "`adapters.lora.overrides.r`: must be >= 1, got 0"),
        ("lora: {config: lora}", "lora: {config: lora, overrides: {attn_matrices: q}}",
         "`adapters.lora.overrides.attn_matrices`: expected List[str] (LoRAConfig), got str 'q'"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {reduction_factor: eight}}",
         "`adapters.seq_bn.overrides.reduction_factor`: expected float | Mapping (SeqBnConfig), got str"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {reduction_factor: 0}}",
         "`adapters.seq_bn.overrides.reduction_factor`: must be > 0, got 0"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {reduction_factor: {default: -2}}}",
         "`adapters.seq_bn.overrides.reduction_factor.default`: must be > 0, got -2"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {dropout: 1.5}}",
         "`adapters.seq_bn.overrides.dropout`: must be >= 0 and < 1, got 1.5"),
        ("seq_bn: {config: seq_bn}", "seq_bn: {config: seq_bn, overrides: {dropout: .nan}}",
         "`adapters.seq_bn.overrides.dropout`: must be a finite number, got nan"),
        ("seq_bn_inv: {config: seq_bn_inv}",
         "seq_bn_inv: {config: seq_bn_inv, overrides: {inv_adapter_reduction_factor: -1}}",
         "`adapters.seq_bn_inv.overrides.inv_adapter_reduction_factor`: must be > 0, got -1"),
        ("num_modules: 4", "num_modules: 1", "`adapters.mosa.overrides.num_modules`: must be >= 2, got 1"),
        ("num_modules: 4", "num_modules: 2.5", "`adapters.mosa.overrides.num_modules`: expected int, got float"),
        ("consistency_weight: 1.0", "consistency_weight: -1.0",
         "`adapters.mosa.overrides.consistency_weight`: must be >= 0, got -1.0"),
        ("consistency_weight: 1.0", "consistency_weight: .inf",
         "`adapters.mosa.overrides.consistency_weight`: must be a finite number, got inf"),
        ("  lora: {config: lora}", "  lora: {config: lora}\n  loraa: {config: lora}",
         "`adapters.loraa`: unknown adapter method 'loraa'; closest: lora"),
    ],
)  # fmt: skip
def test_adapter_settings_are_checked_against_their_method(project, old, new, message):
    assert message in registry_error(project, "params/adapters.yaml", old, new)


def test_adapter_config_aliases_and_valid_overrides_pass(project):
    replace_in(project, "params/adapters.yaml", "seq_bn: {config: seq_bn}", "seq_bn: {config: pfeiffer}")
    replace_in(
        project,
        "params/adapters.yaml",
        "lora: {config: lora}",
        "lora: {config: lora, overrides: {r: 4, alpha: 16, attn_matrices: [q, k, v], dropout: 0.1}}",
    )
    reg = load_registry()
    assert reg.adapters["seq_bn"].config == "pfeiffer" and reg.adapters["lora"].overrides["r"] == 4


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"seq_bn": {"reduction_factr": 8}},
         "unknown key `adapter_overrides.seq_bn.reduction_factr` for adapter method 'seq_bn' (SeqBnConfig; "
         "did you mean `adapter_overrides.seq_bn.reduction_factor`?)"),
        ({"seq_bn": {"reduction_factor": -8}}, "`adapter_overrides.seq_bn.reduction_factor`: must be > 0, got -8"),
        ({"lora": {"alpha": "big"}}, "`adapter_overrides.lora.alpha`: expected int (LoRAConfig), got str 'big'"),
        ({"mosa": {"num_modules": 1}}, "`adapter_overrides.mosa.num_modules`: must be >= 2, got 1"),
        ({"mosa": {"seed": 3}}, "unknown key `adapter_overrides.mosa.seed` for adapter method 'mosa'"),
    ],
)  # fmt: skip
def test_profile_adapter_overrides_are_checked(project, overrides, message):
    assert message in error_of(project, "ov", tiny_profile(adapter_overrides=overrides))


DUPLICATES = """description: x
data: {mode: demo}
adapt:
  glotcc:
    max_steps: 10
    batch_size: 8
    max_steps: 20
"""


def test_duplicate_yaml_keys_are_errors(project):
    project.edit_yaml("params/profiles/dup.yaml", DUPLICATES)
    with pytest.raises(ParamError) as err:
        load_profile("dup")
    assert str(err.value) == (
        "params/profiles/dup.yaml:7: duplicate key `adapt.glotcc.max_steps` (first at line 5)"
    )
    project.edit_yaml("params/profiles/dup2.yaml", "seeds: [1]\ndescription: a\nseeds: [2]\n")
    with pytest.raises(
        ParamError, match=r"^params/profiles/dup2.yaml:3: duplicate key `seeds` \(first at line 1\)$"
    ):
        load_profile("dup2")
    # in a mapping inside a list, and a registry file
    project.edit_yaml("params/profiles/dup3.yaml", "x:\n  - {a: 1}\n  - {a: 1, b: 2, a: 3}\n")
    with pytest.raises(ParamError, match=r"dup3.yaml:3: duplicate key `x\[1\].a`"):
        load_profile("dup3")
    replace_in(
        project,
        "params/models.yaml",
        "\n  tiny-xlmr:",
        "\n  mbert: {architecture: bert, display: m, hub_id: a/b}\n  tiny-xlmr:",
    )
    with pytest.raises(
        ParamError, match=r"^params/models.yaml:\d+: duplicate key `models.mbert` \(first at line \d+\)$"
    ):
        load_registry()


@pytest.mark.parametrize("loader", ["SafeLoader", "CSafeLoader"])
def test_libyaml_and_pure_python_read_params_alike(monkeypatch, loader):
    """The params files, a duplicate key and a YAML error read the same with libyaml's parser (used where PyYAML
    has it) as with the pure-Python one."""
    from lrl_utils.config import paths, yaml_loader

    if not hasattr(yaml, loader):
        pytest.skip(f"PyYAML built without {loader}")
    files = sorted(paths.params_dir().rglob("*.yaml"))
    expected = {f: yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.SafeLoader) for f in files}
    monkeypatch.setattr(yaml_loader, "_LOADER", getattr(yaml, loader))
    assert {f: yaml_loader.load(f.read_text(encoding="utf-8")) for f in files} == expected
    with pytest.raises(yaml_loader.DuplicateKey) as err:
        yaml_loader.load(DUPLICATES)
    assert (err.value.path, err.value.line, err.value.first_line) == ("adapt.glotcc.max_steps", 7, 5)
    with pytest.raises(yaml.YAMLError) as err:
        yaml_loader.load("a: [1, 2\nb: 3\n")
    assert err.value.problem_mark.line + 1 == 2 and "expected ',' or ']'" in err.value.problem


def test_yaml_merge_keys_may_be_overridden(project):
    text = yaml.safe_dump(tiny_profile())
    text = text.replace("finetune:\n  tc:\n", "finetune:\n  tc: &tc\n", 1) + "other: {<<: *tc, epochs: 2}\n"
    project.edit_yaml("params/profiles/merge.yaml", text)
    with pytest.raises(ParamError, match="unknown key `other`"):  # got past the YAML reading
        load_profile("merge")


@pytest.mark.parametrize(
    "name", ["../x", "../../params/profiles/demo", "a/b", "a\\b", "/tmp/x", "..", ".x", "x y", ""]
)
def test_a_profile_is_named_not_located(project, name):
    with pytest.raises(ParamError) as err:
        load_profile(name)
    msg = str(err.value)
    assert (
        "\n" not in msg
        and "a profile is named, not located" in msg
        and "available: " in msg
        and "demo" in msg
    )


@pytest.mark.parametrize(
    "rel, old, new, key",
    [
        ("params/models.yaml", "\n  tiny-xlmr:", "\n  ../m: {architecture: bert, display: m, hub_id: a/b}\n  tiny-xlmr:",
         "`models.../m`: model name '../m'"),
        ("params/languages.yaml", "\n  qac:", "\n  q/x: {name: X, iso2: qx, glotcc: qxx-Latn, flores: qxx_Latn, family: x}\n  qac:",
         "`languages.q/x`: language name 'q/x'"),
        ("params/llms.yaml", "\n  gpt-4o-mini:", "\n  a\\b: {backend: openai, display: x, model: m}\n  gpt-4o-mini:",
         "`llms.a\\b`: llm name 'a\\\\b'"),
    ],
)  # fmt: skip
def test_registry_names_are_plain(project, rel, old, new, key):
    assert key in registry_error(project, rel, old, new)


def test_run_folders_stay_inside_runs(project):
    from lrl_utils.config.specs import ReportSpec
    from lrl_utils.records.results import run_folder_path

    with pytest.raises(ParamError, match="folder name '../../x.tables' is not a plain name"):
        ReportSpec(kind="tables", profile="../../x", inputs=()).folder()
    assert run_folder_path("report/demo.tables--0123") == project.runs / "report" / "demo.tables--0123"
    for bad in ("report/../../x", "../x", "/tmp/x", "", "_failed/../.."):
        with pytest.raises(ParamError, match="outside the runs directory"):
            run_folder_path(bad)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--jobs", "0"], "argument --jobs: expected an integer >= 1, got '0'"),
        (["--jobs", "-2"], "argument --jobs: expected an integer >= 1, got '-2'"),
        (["--jobs", "1.5"], "argument --jobs: expected an integer >= 1, got '1.5'"),
        (["--jobs", "two"], "argument --jobs: expected an integer >= 1, got 'two'"),
        (["--jobs", "2", "--jobs", "2"], "--jobs given more than once"),
        (["--profile", "demo", "--profile", "paper"], "--profile given more than once"),
        (["--profile=demo", "--prof", "paper"], "--profile given more than once"),
        (["--only", "adapt", "--only", "pppl"], "--only given more than once"),
        (["--dry-run"], "--dry-run given more than once"),
        (["--force"], "argument --force: not allowed with argument --dry-run"),
        (["--only", "nope"], "argument --only: invalid choice: 'nope'"),
        (["--profile", "../../params/profiles/demo"], "profile name '../../params/profiles/demo': a profile is named"),
        (["--profile", "/etc/demo"], "a profile is named, not located"),
        (["--profile", "demo.yaml"], "no params/profiles/demo.yaml.yaml; available: ['demo', "),
        (["--profile", "demo.yaml"], "; did you mean --profile demo?"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line_and_exit_2(project, capsys, argv, message):
    assert main(["--dry-run", *argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert captured.out == ""


def test_cli_dry_run_accepts_a_valid_command(project, capsys):
    assert main(["--dry-run", "--jobs", "3", "--profile", "demo", "--target", "x"]) == 2  # an unknown target
    assert "--target: 'x' is not a run of this profile" in capsys.readouterr().err
    assert main(["--dry-run", "--jobs", "3", "--only", "report"]) == 0
    assert "2 runs" in capsys.readouterr().out


def test_a_profile_name_too_long_for_a_file_name_is_one_line(project, capsys):
    assert main(["--profile", "a" * 300, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: profile name 'aaaa") and "at most 100 characters" in err and "\n" not in err


def test_a_registry_entry_that_is_not_a_mapping_says_so(project):
    path = project.root / "params/llms.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    name = next(iter(data["llms"]))
    data["llms"][name] = []
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(
        ParamError, match=rf"^params/llms.yaml: `llms.{name}`: expected a mapping of settings, got list$"
    ):
        load_registry()


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"languages": []}, "`languages`: give at least one language"),
        ({"models": []}, "`models`: give at least one model"),
        ({"seeds": []}, "`seeds`: give at least one seed"),
        (
            {"finetune": {"tc": {"epochs": 1, "max_length": 32}, "pos": {"epochs": 1, "max_length": 32}}},
            "`finetune.pos`",
        ),
    ],
)
def test_a_profile_with_nothing_to_run_or_an_unknown_task_is_refused(project, changes, key):
    """An empty list that leaves nothing to adapt or evaluate, or settings for a task that does not exist, is an
    error naming the key when the profile loads (before: a grid of a few runs that did nothing, or ignored)."""
    assert key in error_of(project, "empty", tiny_profile(**changes))


def test_tiny_models_without_pre_training_languages_are_refused(project):
    prof = tiny_profile()
    prof["base_model"]["languages"] = []
    assert "`base_model.languages`: give the languages" in error_of(project, "nobase", prof)


def test_languages_may_be_empty_when_tasks_name_their_own(project):
    """A task-only profile (every language evaluated on the base model alone, `task_languages`) is valid."""
    project.add_profile("taskonly", tiny_profile(languages=[], task_languages={"tc": ["qac"]}))
    assert load_profile("taskonly")[0].languages == ()


def test_a_language_added_by_copying_an_entry_is_not_one_of_the_papers(project):
    """A user's own language (its codes and `seen_by`, as the README says) is usable in a profile and stays out
    of the paper's 30: `paper` is true only where the registry says so."""
    from lrl_utils.config.params import load_registry as plain_registry

    path = project.root / "params" / "languages.yaml"
    text = path.read_text(encoding="utf-8")
    entry = "  fao: {name: Faroese, iso2: fo, glotcc: fao-Latn, flores: fao_Latn, family: Indo-European, seen_by: []}\n"
    path.write_text(text.replace("  qen: {", entry + "  qen: {", 1), encoding="utf-8")
    reg = plain_registry()
    assert not reg.languages["fao"].paper and reg.languages["mlt"].paper
    assert len([c for c, lang in reg.languages.items() if lang.paper]) == 30
    local = tiny_profile(
        data={"mode": "local", "flores": "x", "sib200": "x", "glotcc": "x"}, languages=["fao"]
    )
    local["base_model"]["languages"] = ["fao"]
    project.add_profile("faroese", local)
    assert load_profile("faroese")[0].languages == ("fao",)
