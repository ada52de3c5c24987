"""Parameter validation: every error is one line naming the file and the key, before any compute."""

from __future__ import annotations

import pytest
from conftest import tiny_profile

from lrl_utils.params import ParamError, load_registry
from lrl_utils.profiles import available_profiles, load_profile
from lrl_utils.runner import main


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
    assert len([c for c, lang in reg.languages.items() if not lang.demo]) == 30
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
    assert "unknown language 'qad'" in error_of(project, "b1", tiny_profile(languages=["qad"]))
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


def test_invalid_yaml_reports_line(project):
    project.edit_yaml("params/profiles/broken.yaml", "description: x\nlanguages: [qac\n")
    with pytest.raises(ParamError, match=r"params/profiles/broken.yaml:\d+: invalid YAML"):
        load_profile("broken")


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
        assert all(v is None for v in values) if lang.demo else all(v is not None for v in values), code


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
    assert "shots must be >= 0" in msg
    assert load_registry().llms["deepseek-chat"].api_key_env == "DEEPSEEK_API_KEY"
