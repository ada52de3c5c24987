"""The findings checks (report/findings.py) on hand-made records: they pass when the numbers show the finding and
fail when they do not (or when the runs are missing)."""

from __future__ import annotations

import itertools

import pandas as pd

from lrl_utils.report.findings import findings, markdown, paired_interval

LANGS = {"l0": 0.0, "l1": 0.0, "l2": 0.05, "l3": 0.2, "l4": 0.5, "l5": 1.0}  # pre-training GB
SEEDS = (1, 2, 3)


def make_records(gain_unseen: float = 0.2, gain_seen: float = 0.02, pppl_drop: float = 0.5) -> pd.DataFrame:
    """Records in `load_records`' layout: F1 grows with share, GlotCC seq_bn_inv gains more where share is 0."""
    rows = []
    base_row = dict(run="r", model="m", source="none", adapter="none", task="", seed=None)
    for (lang, share), (source, adapter) in itertools.product(
        LANGS.items(),
        [("none", "none"), ("glotcc", "seq_bn"), ("glotcc", "seq_bn_inv"), ("conceptnet", "seq_bn_inv")],
    ):
        seen = share > 0
        base_pppl = 50 / (1 + 10 * share)
        factor = {"none": 1.0, "glotcc": pppl_drop, "conceptnet": 1.3}[source] * (
            0.9 if adapter == "seq_bn" else 1
        )
        rows.append(
            base_row
            | dict(stage="pppl", language=lang, seen=seen, source=source, adapter=adapter, metric="pppl")
            | dict(value=base_pppl * factor)
        )
        for task, seed in itertools.product(("tc", "sa"), SEEDS):
            base = 0.3 + 0.5 * share + 0.001 * seed
            gain = (
                {"none": 0.0, "glotcc": gain_seen / (1 + 5 * share) if seen else gain_unseen}[source]
                if (source != "conceptnet")
                else 0.01
            )
            gain *= 0.8 if adapter == "seq_bn" else 1.0
            metric = "test_macro_f1"
            rows.append(
                base_row
                | dict(stage="finetune", language=lang, seen=seen, source=source, adapter=adapter, task=task)
                | dict(seed=seed, metric=metric, value=base + gain + 0.002 * (seed % 2))
            )
    return pd.DataFrame(rows)


SIZES = pd.DataFrame([{"model": "m", "language": k, "pretrain_gb": v} for k, v in LANGS.items()])
LLM = pd.DataFrame(
    [{"llm": "tiny-llama", "language": k, "task": t, "shots": s, "f1": 0.2} for k in LANGS for t in ("tc", "sa")
     for s in (0, 3)]
)  # fmt: skip


def test_the_findings_pass_when_the_numbers_show_them():
    checks = findings(make_records(), SIZES, LLM)
    assert checks["passed"].all(), checks.loc[~checks["passed"], ["check", "numbers"]].to_string()
    assert {"glotcc_raises_unseen_f1", "tc_beats_llm", "share_vs_base_pppl"} <= set(checks["check"])
    text = markdown(checks)
    assert "## F1 small adaptation data helps: PASS" in text and "tiny Llama" in text


def test_the_findings_fail_when_adaptation_hurts_or_the_llm_wins_or_runs_are_missing():
    hurt = findings(make_records(gain_unseen=-0.1, pppl_drop=1.2), SIZES, LLM).set_index("check")["passed"]
    assert not hurt["glotcc_raises_unseen_f1"] and not hurt["glotcc_lowers_pppl"]
    strong_llm = LLM.assign(f1=0.99)
    assert not findings(make_records(), SIZES, strong_llm).set_index("check")["passed"]["tc_beats_llm"]
    few = SIZES[SIZES["language"].isin(["l0", "l5"])]  # two languages: no correlation to speak of
    f3 = findings(make_records(), few, LLM)
    assert not f3.loc[f3["finding"].str.startswith("F3"), "passed"].any()
    empty = findings(make_records().iloc[0:0], SIZES.iloc[0:0], LLM.iloc[0:0])
    assert not empty["passed"].any()


def test_findings_of_a_grid_without_pppl_results_fail_without_an_error():
    """Every PPPL run blocked (its upstream failed): the F1 checks say so, with `seen` read as objects too."""
    records = make_records()
    records = records[records["stage"] != "pppl"].astype({"seen": object})
    checks = findings(records, SIZES, LLM).set_index("check")
    assert checks.loc["glotcc_lowers_pppl", "passed"] is None  # not tested
    assert checks.loc["glotcc_lowers_pppl", "numbers"] == "no GlotCC PPPL runs on seen languages"
    assert checks.loc["glotcc_raises_unseen_f1", "passed"]  # the downstream runs are there


def test_an_f1_comparison_the_grid_lacks_is_not_tested_not_failed():
    """A grid without the configurations a check compares (no ConceptNet adapter, no second GlotCC adapter, one
    seed on the unseen language) says "not tested" for that check, with no `nan` in its numbers; the checks it
    has data for still decide the finding."""
    records = make_records()
    plain = records[(records["source"] != "conceptnet") & (records["adapter"] != "seq_bn")]
    one_seed = plain[(plain["stage"] != "finetune") | plain["seen"] | (plain["seed"] == SEEDS[0])]
    one_seed = one_seed[one_seed["language"] != "l1"]  # one unseen language
    one_seed = one_seed[(one_seed["task"] != "sa") | (one_seed["stage"] != "finetune")]
    checks = findings(one_seed, SIZES, LLM).set_index("check")
    for check in (
        "seq_bn_best_mlm",
        "glotcc_raises_unseen_f1",
        "seq_bn_inv_best_downstream",
        "conceptnet_helps_less",
    ):
        assert checks.loc[check, "passed"] is None, check
        assert "nan" not in checks.loc[check, "numbers"], checks.loc[check, "numbers"]
    assert checks.loc["glotcc_lowers_pppl", "passed"] and checks.loc["gain_largest_unseen", "passed"]
    text = markdown(findings(one_seed, SIZES, LLM))
    assert "| seq_bn_best_mlm |" in text and "not tested" in text
    assert "## F1 small adaptation data helps: PASS (2 of 2 checks)" in text


def test_paired_interval():
    mean, low, high = paired_interval([0.1, 0.2, 0.3])
    assert (
        abs(mean - 0.2) < 1e-12 and low < 0.2 < high and abs((high - low) / 2 - 4.303 * 0.1 / 3**0.5) < 1e-3
    )


def test_a_correlation_over_too_few_languages_is_not_tested_and_not_counted():
    """A task run on fewer than 4 languages (`task_languages`) gives its F3 correlations no verdict: "not tested"
    in findings.md, left out of the finding's count; the other checks decide."""
    records = make_records()
    few = records[(records["task"] != "sa") | records["language"].isin(["l0", "l4", "l5"])]
    checks = findings(few, SIZES, LLM).set_index("check")
    assert checks.loc["share_vs_base_sa_f1", "passed"] is None
    assert "fewer than 4 languages, not tested" in checks.loc["share_vs_base_sa_f1", "numbers"]
    assert checks.loc["share_vs_base_tc_f1", "passed"]
    text = markdown(checks.reset_index())
    f3 = next(line for line in text.splitlines() if line.startswith("## F3"))
    tested = int(checks.loc[checks["finding"].str.startswith("F3"), "passed"].notna().sum())
    assert f3 == f"## F3 pre-training data dominates: PASS ({tested} of {tested} checks)"
    assert "| not tested |" in text


def test_a_correlation_over_one_share_is_not_tested_and_one_score_fails():
    """Every language with the same share of pre-training: no correlation to test ("not tested"); the same TC
    score on every language while the shares differ: TC does not rise with the share (FAIL)."""
    same = SIZES.assign(pretrain_gb=0.3)
    checks = findings(make_records(), same, LLM).set_index("check")
    assert checks.loc["share_vs_base_tc_f1", "passed"] is None
    assert (
        "m: no coefficient (6 languages, one share): one share of pre-training, not tested"
        in (checks.loc["share_vs_base_tc_f1", "numbers"])
    )
    records = make_records()
    flat = records.assign(value=records["value"].where(records["stage"] != "finetune", 0.057))
    checks = findings(flat, SIZES, LLM).set_index("check")
    verdict = checks.loc["share_vs_base_tc_f1", "passed"]
    assert verdict is not None and not verdict
    assert checks.loc["share_vs_base_tc_f1", "numbers"] == "m: no coefficient (6 languages, one score)"


def test_the_f1_checks_pass_on_the_papers_own_numbers():
    """The checks state what the paper found: applied to its Tables 10-22 (one seed), every F1 check passes,
    and findings.md shows that next to the grid's result."""
    from lrl_utils.report.findings import f1_checks
    from lrl_utils.report.per_model import paper_verdicts
    from lrl_utils.report.reference import paper_records

    records = paper_records()
    assert {"pppl", "finetune"} == set(records["stage"]) and (~records["seen"]).sum() > 0
    rows = {r["check"]: r for r in f1_checks(records)}
    assert all(r["passed"] for r in rows.values()), {
        k: r["numbers"] for k, r in rows.items() if not r["passed"]
    }
    assert "tc: base 0.304" in rows["glotcc_raises_unseen_f1"]["numbers"]  # XLM-R + mBERT unseen TC, Table 1
    verdicts = paper_verdicts()
    text = markdown(
        findings(make_records(gain_unseen=-0.1), SIZES, LLM), columns={"on the paper's numbers": verdicts}
    )
    assert "| on the paper's numbers |" in text
    assert (
        "| glotcc_raises_unseen_f1 |" in text and "| FAIL | PASS |" in text
    )  # the grid fails, the paper passes
    assert "| tc_beats_llm |" in text and "| PASS | – |" in text  # F2: not checked on the paper's numbers


def test_a_grid_is_compared_with_the_papers_model_of_its_architecture():
    """Like with like: tiny XLM-R stands for the paper's XLM-R, on whose numbers alone two F1 checks fail (its
    Seq_bn_inv raises seen-language PPPL, its unseen interval reaches below 0); findings.md then shows that
    column and the paper's pooled one, and each finding's tally on both. A grid of both architectures gets each of
    the paper's models and the pooled one."""
    from lrl_utils.report.per_model import paper_columns, paper_counterparts, paper_verdicts

    assert paper_counterparts(["tiny-xlmr", "tiny-llama"]) == ("xlmr",)
    assert paper_counterparts(["tiny-mbert", "xlmr"]) == ("mbert", "xlmr")
    assert paper_counterparts(["tiny-llama"]) == ()
    xlmr, mbert = paper_verdicts(["xlmr"]), paper_verdicts(["mbert"])
    assert not xlmr["glotcc_lowers_pppl"] and not xlmr["glotcc_raises_unseen_f1"]
    assert xlmr["seq_bn_best_mlm"] and xlmr["seq_bn_inv_best_downstream"] and all(mbert.values())
    assert paper_verdicts() == paper_verdicts(["mbert", "xlmr"]) and all(paper_verdicts().values())

    columns = paper_columns(["tiny-xlmr"])
    assert list(columns) == ["on the paper's XLM-R", "on the paper's mBERT + XLM-R"]
    assert list(paper_columns(["tiny-mbert", "tiny-xlmr"])) == [
        "on the paper's mBERT",
        "on the paper's XLM-R",
        "on the paper's mBERT + XLM-R",
    ]
    assert list(paper_columns(["tiny-llama"])) == ["on the paper's mBERT + XLM-R"]
    text = markdown(findings(make_records(), SIZES, LLM), columns=columns)
    assert (
        "| check | claim | numbers | result | on the paper's XLM-R | on the paper's mBERT + XLM-R |" in text
    )
    f1 = next(line for line in text.splitlines() if line.startswith("## F1"))
    assert f1.endswith("checks; the paper's XLM-R: 4 of 6; the paper's mBERT + XLM-R: 6 of 6)"), f1
    row = next(line for line in text.splitlines() if line.startswith("| glotcc_lowers_pppl |"))
    assert row.endswith("| FAIL | PASS |"), row
    f2 = next(line for line in text.splitlines() if line.startswith("## F2"))
    assert "paper" not in f2  # no F2 checks on the paper's numbers: no tally


def test_a_grid_of_several_models_shows_each_model_alone():
    """Two architectures pooled can pass a check one of them fails: findings.md shows each model's F1 checks
    alone, before the paper's columns; a grid of one model gets no such column."""
    from lrl_utils.report.findings import f1_checks
    from lrl_utils.report.per_model import columns, grid_columns

    good = make_records().assign(model="tiny-mbert")
    bad = make_records(gain_unseen=-0.1).assign(model="tiny-xlmr")
    both = pd.concat([good, bad], ignore_index=True)
    alone = grid_columns(both)
    assert list(alone) == ["on tiny mBERT alone", "on tiny XLM-R alone"]
    assert alone["on tiny mBERT alone"] == {r["check"]: r["passed"] for r in f1_checks(good)}
    assert alone["on tiny XLM-R alone"] == {r["check"]: r["passed"] for r in f1_checks(bad)}
    assert alone["on tiny mBERT alone"]["glotcc_raises_unseen_f1"]
    assert not alone["on tiny XLM-R alone"]["glotcc_raises_unseen_f1"]
    assert grid_columns(good) == {} and list(columns(bad)) == [
        "on the paper's XLM-R",
        "on the paper's mBERT + XLM-R",
    ]
    labels = list(columns(both))
    assert labels == [
        "on tiny mBERT alone",
        "on tiny XLM-R alone",
        "on the paper's mBERT",
        "on the paper's XLM-R",
        "on the paper's mBERT + XLM-R",
    ]
    text = markdown(findings(both, SIZES, LLM), columns=columns(both))
    f1 = next(line for line in text.splitlines() if line.startswith("## F1"))
    assert "; tiny mBERT alone: 6 of 6; tiny XLM-R alone: " in f1, f1


def test_f0_lists_the_required_learning_checks_first():
    """The tables report's learning checks become the findings' precondition: one F0 row per required kind."""
    from lrl_utils.report.checks import learning_checks

    learned = learning_checks(make_records())
    checks = findings(make_records(), SIZES, LLM, learned)
    f0 = checks[checks["finding"] == "F0 every run learned"]
    assert list(checks["finding"])[0] == "F0 every run learned"
    assert set(f0["check"]) == {"tc_above_chance"} and f0["passed"].all()  # PPPL above base: reported only
    assert "pass" in f0.set_index("check").loc["tc_above_chance", "numbers"]
    worse = make_records()
    worse.loc[(worse["task"] == "tc") & (worse["language"] == "l4"), "value"] = 0.15  # at chance: F0 fails
    failed = findings(worse, SIZES, LLM, learning_checks(worse)).set_index("check")
    assert not failed.loc["tc_above_chance", "passed"]
    assert "failing: m l4" in failed.loc["tc_above_chance", "numbers"]
    assert "## F0 every run learned: FAIL" in markdown(failed.reset_index())


def test_configurations_are_compared_on_the_pairs_they_share():
    """ConceptNet run on TC only is compared with GlotCC's TC gain, not with GlotCC's mean over TC and SA."""
    records = make_records()
    unseen, finetune = ~records["seen"], records["stage"] == "finetune"
    glot_sa = finetune & unseen & (records["source"] == "glotcc") & (records["task"] == "sa")
    records.loc[glot_sa & (records["adapter"] == "seq_bn_inv"), "value"] -= 0.25  # SA gain 0.2 → -0.05
    cn = finetune & (records["source"] == "conceptnet")
    records.loc[cn & unseen & (records["task"] == "tc"), "value"] += 0.09  # TC gain 0.1, below GlotCC's 0.2
    records = records[~(cn & (records["task"] == "sa"))]  # ConceptNet: TC only
    checks = findings(records, SIZES, LLM).set_index("check")
    assert checks.loc["conceptnet_helps_less", "passed"], checks.loc["conceptnet_helps_less", "numbers"]
    assert "ConceptNet +0.100, GlotCC +0.200 (6 pairs)" in checks.loc["conceptnet_helps_less", "numbers"]
    records.loc[cn & unseen & (records["task"] == "tc"), "value"] += 0.2  # now ConceptNet gains more on TC
    assert not findings(records, SIZES, LLM).set_index("check").loc["conceptnet_helps_less", "passed"]


def test_the_unseen_gain_is_compared_with_the_seen_gain_task_by_task():
    """Unseen languages run TC and SA, the seen ones mostly SA, the task any adapter moves most: pooled, the seen
    gain looks larger; task by task, the unseen gain is larger in both."""
    records = make_records()
    keys = ["model", "language", "task", "seed"]
    base = records[(records["stage"] == "finetune") & (records["source"] == "none")].set_index(keys)["value"]
    gains = {(False, "tc"): 0.05, (False, "sa"): 0.30, (True, "tc"): 0.02, (True, "sa"): 0.28}
    glot = (records["stage"] == "finetune") & (records["source"] == "glotcc")
    for i in records.index[glot]:
        r = records.loc[i]
        records.loc[i, "value"] = base[tuple(r[keys])] + gains[(bool(r["seen"]), r["task"])]
    seen_tc = (records["stage"] == "finetune") & records["seen"] & (records["task"] == "tc")
    records = records[~(seen_tc & (records["language"] != "l5"))]  # seen TC on one language only
    row = findings(records, SIZES, LLM).set_index("check").loc["gain_largest_unseen"]
    assert row["passed"], row["numbers"]  # pooled: unseen 0.175 < seen 0.236
    assert (
        "tc: unseen +0.050 (6), seen +0.020 (3)" in row["numbers"]
        and "mean difference +0.025" in row["numbers"]
    )


def test_the_mlm_check_says_which_head_path_seq_bn_inv_was_scored_on(tmp_path):
    """Seq_bn_inv's PPPL depends on the LM head path (`head_path`); F1's MLM check names the one its runs used,
    read from the PPPL results (`head_paths`)."""
    import json

    from lrl_utils.records.results import RESULT_FILE
    from lrl_utils.report.findings import head_paths

    for i, (adapter, path) in enumerate(
        [("seq_bn_inv", "paper_compat"), ("seq_bn", None), ("seq_bn_inv", "paper_compat")]
    ):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        result = {"stage": "pppl", "spec": {"adapter": adapter}, "metrics": {"pppl": 9.0, "head_path": path}}
        (folder / RESULT_FILE).write_text(json.dumps(result), encoding="utf-8")
    (tmp_path / "other").mkdir()  # a folder without a result: skipped
    paths = head_paths([str(p) for p in sorted(tmp_path.iterdir())])
    assert paths == {"paper_compat"}
    numbers = (
        findings(make_records(), SIZES, LLM, paths=paths).set_index("check").loc["seq_bn_best_mlm", "numbers"]
    )
    assert "original's head path (`paper_compat`" in numbers
    numbers = (
        findings(make_records(), SIZES, LLM, paths={"inverse"}).set_index("check").loc["seq_bn_best_mlm"]
    )
    assert "corrected head path (`inverse`" in numbers["numbers"]
    assert (
        "head path"
        not in findings(make_records(), SIZES, LLM).set_index("check").loc["seq_bn_best_mlm", "numbers"]
    )


def test_the_readme_quotes_a_findings_file_of_the_current_checks():
    """README's "What the demo shows" holds `figures/findings.md` between the quote markers, put there by
    `readme_quote`: its findings are the ones the code now writes, each F1 and F2 check is there, and every check
    it names is one the code writes (a renamed or dropped check, or a hand-edited block without the table
    layout, fails here)."""
    import re
    from pathlib import Path

    from lrl_utils.report import readme_quote
    from lrl_utils.report.checks import CLAIMS, learning_checks

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme_quote.current_block(readme)
    records = make_records()
    sa = records[records["task"] == "sa"]
    records = pd.concat([records, sa.assign(task="ner", metric="test_f1")], ignore_index=True)
    llm = pd.concat([LLM, LLM[LLM["task"] == "sa"].assign(task="ner")], ignore_index=True)
    checks = findings(records, SIZES, llm, learning_checks(records))
    written = readme_quote.quoted(markdown(checks))
    headings = re.compile(r"^#### (F\d [^:]+): (?:PASS|FAIL)", re.MULTILINE)
    assert headings.findall(block) == headings.findall(written) and len(headings.findall(block)) == 4
    quoted_checks = set(re.findall(r"^\| (\w+) \| .* \| (?:PASS|FAIL|not tested) \|", block, re.MULTILINE))
    known = set(checks["check"]) | set(CLAIMS)
    assert quoted_checks <= known, quoted_checks - known
    f1_f2 = checks.loc[checks["finding"].str.match(r"F[12] "), "check"]
    assert set(f1_f2) <= quoted_checks
    assert "\n| check | claim | numbers | result |" in block
    # which machines computed it (report/machines.py): CPUs round differently
    assert "\nComputed on " in block


def test_readme_quote_replaces_the_block_checks_it_and_names_what_is_wrong(tmp_path, capsys):
    from lrl_utils.report import readme_quote

    findings_md = tmp_path / "findings.md"
    findings_md.write_text(markdown(findings(make_records(), SIZES, LLM)) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{readme_quote.BEGIN}\nold\n{readme_quote.END}\n\nafter\n")
    args = ["--findings", str(findings_md), "--readme", str(readme)]
    assert readme_quote.main([*args, "--check"]) == 1
    assert readme_quote.main(args) == 0
    text = readme.read_text()
    assert "old" not in text and "#### F1 small adaptation data helps: PASS" in text
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith(f"{readme_quote.END}\n\nafter\n")
    assert "# Findings" not in text  # the title is the README's section's, not the file's
    assert readme_quote.main([*args, "--check"]) == 0
    assert readme_quote.main(args) == 0 and readme.read_text() == text  # idempotent

    readme.write_text("# no markers\n")
    capsys.readouterr()
    assert readme_quote.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(readme) in err and "BEGIN figures/findings.md" in err
    findings_md.write_text("not a findings file\n")
    assert readme_quote.main(args) == 2
    assert "not a findings.md" in capsys.readouterr().err


def test_a_partial_grid_says_which_runs_are_missing_and_untested_findings_do_not_fail(project, tmp_path):
    """A grid whose runs all failed or were blocked (or one without LLMs): every finding is "not tested" (not FAIL
    with "0 of 0 checks"), F2 without LLM runs is not tested, and findings.md names the runs without a result."""
    from lrl_utils.report.findings_files import write_findings

    no_llm = findings(make_records(), SIZES, LLM.iloc[0:0]).set_index("check")
    assert no_llm.loc["beats_llm", "passed"] is None and no_llm.loc["beats_llm", "numbers"].startswith(
        "tc: no LLM runs"
    )
    missing = [
        "pppl/tiny-xlmr.qad.none.none--0123456789ab",
        "finetune/tiny-xlmr.qad.tc.none.none.s1--0123456789ab",
    ]
    checks = write_findings(missing, [tmp_path])
    assert checks["passed"].isna().all(), checks[["check", "passed"]].to_string()
    text = (tmp_path / "findings.md").read_text(encoding="utf-8")
    assert "FAIL" not in text.replace("| FAIL |", ""), text  # the paper's own columns may say FAIL, not ours
    assert "## F1 small adaptation data helps: not tested (0 of 0 checks" in text
    assert "## F2 the adapted small model beats prompted LLMs: not tested" in text
    assert (
        "**Missing: 2 run(s) of this grid have no result**" in text
        and missing[0] in text
        and missing[1] in text
    )
