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
