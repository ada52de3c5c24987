"""Where a profile's data comes from (`data:`): demo world, hub or local paths, quoting, samples, bad-record limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lrl_utils.config.params import (
    _added,
    _help,
    _seed,
)

QUOTED_DATASETS = ("flores", "sib200", "sentiment")  # the datasets `data.quoting` may name
TASK_DATA = {"tc": "sib200", "sa": "sentiment", "ner": "wikiann"}  # task → its `data.*` key


@dataclass(frozen=True)
class DataSettings:
    """Where the data come from. A local path is absolute or relative to the project root (it may lead outside
    it: `../shared/data/sib200`); specs store it as written (normalised), so hashes do not depend on where the
    project is checked out. In mode `local` every dataset the profile reads must be a local path (a key left at
    `hub` is an error naming it); in mode `hub` single keys may still point at local paths."""

    mode: Literal["demo", "local", "hub"] = _help(
        "demo = the generated demo world; local = every dataset from the local paths below; hub = HF hub "
        "(keys set to a path are read locally)"
    )
    world_seed: int = _seed("seed of the demo world generator (demo mode)", default=0)
    world_rare_words: int = _added(
        "demo world, semantic variant: extra content words per topic (0 = the demo's world), so that SIB-200's "
        "701 training sentences cannot teach a bag of words the topics (docs/architecture.md)",
        default=0,
        minimum=0,
        maximum=500,
    )
    world_flores_topic_words: int = _added(
        "demo world, semantic variant: at most this many topic words per FLORES / SIB-200 sentence (0 = no limit)",
        default=0,
        minimum=0,
    )
    world_web_names: float = _added(
        "demo world: share of GlotCC sentences that may carry named entities made as in its NER data (0 = none, "
        "the older worlds), as real web text holds the names WikiANN tags (docs/architecture.md)",
        default=0.0,
        minimum=0,
        maximum=1,
    )
    world_mislabeled_relative: float = _added(
        "demo world: documents of an unseen close relative in its parent's GlotCC corpus, as a share of the "
        "parent's documents (0 = none, the older worlds): language identification confuses close relatives, so "
        "the relative's pieces are under-trained, not untrained (docs/architecture.md)",
        default=0.0,
        minimum=0,
        maximum=0.5,
    )
    world_web_polarity: float = _added(
        "demo world: share of GlotCC documents that take a side, positive or negative, in their evaluative "
        "adjectives (0 = none, the older worlds), as reviews and opinion pieces do (docs/architecture.md)",
        default=0.0,
        minimum=0,
        maximum=1,
    )
    world_web_code_switch: float = _added(
        "demo world: share of a GlotCC document's topic words written as the English word (0 = none, the older "
        "worlds), as web text in smaller languages borrows English words (docs/architecture.md)",
        default=0.0,
        minimum=0,
        maximum=1,
    )
    world_sentiment_held_out: int = _added(
        "demo world: evaluative adjectives per polarity that never label a sentiment training sentence (0 = none, "
        "the older worlds); development and test use all, so their polarity must come from the model "
        "(docs/architecture.md)",
        default=0,
        minimum=0,
        maximum=3,
    )
    conceptnet: str = _help(
        "ConceptNet: the assertions dump (.csv or .csv.gz) as a local file or `hub` (the 5.7 release URL), or a "
        "folder of sentences already verbalised, as the original trained on (`train_cn_<iso2>.csv` and "
        "`val_cn_<iso2>.csv`, or `<code>/cn_sentences_{train,val}.csv`) or of edge lists (`cn_data_<iso2>.json`, "
        "`<code>/edges.jsonl`; conceptnet_sentences)",
        default="hub",
    )
    glotcc: str = _help(
        "GlotCC-V1 text: a release folder (v1.0/<code>/*.parquet), a folder of per-language folders or files "
        "named by a code form (`mlt`, `mlt-Latn`, `mlt_Latn`: *.parquet, *.jsonl, *.txt = one document per "
        "line), one file, or `hub` (glotcc.glotcc_files)",
        default="hub",
    )
    flores: str = _help(
        "FLORES-200 devtest: a release folder (flores200_dataset/devtest/<code>.devtest), a folder of "
        "<iso3>/devtest.tsv (id<TAB>sentence), one file, or `hub`",
        default="hub",
    )
    sib200: str = _help(
        "SIB-200: a folder of train/dev/test.tsv (index_id<TAB>category<TAB>text), per language as "
        "<code>/, <iso3>/ or data/annotated/<code>/, or `hub`",
        default="hub",
    )
    wikiann: str = _help(
        "WikiANN (NER): a folder of CoNLL files per language (<iso3>/ or <iso2>/: train/dev/test.conll, or "
        "XTREME's train-<iso2>.tsv and dev-<iso2>.tsv), one file, or `hub` (wikiann.load_wikiann)",
        default="hub",
    )
    sentiment: str = _help(
        "binary sentiment: a folder of train/dev/test .tsv/.csv/.jsonl files or one all.* file per data set "
        "(<iso3>/ or <name>/), or `hub` (sentiment.load_sentiment)",
        default="hub",
    )
    max_train_bytes: int = _help(
        "GlotCC: cap on train text per language, UTF-8 bytes (paper: 1 GiB)", minimum=1, default=1024**3
    )
    max_val_bytes: int = _help(
        "GlotCC: cap on validation (and test) text per language, UTF-8 bytes (paper: 200 MiB)",
        minimum=1,
        default=200 * 1024**2,
    )
    max_bad_fraction: float = _help(
        "share of malformed input lines/records (ConceptNet lines, GlotCC records, WikiANN sentences, "
        "sentiment rows) above which a run fails; below it they are counted, and the first ones reported "
        "with file:line in the run's stats",
        minimum=0,
        maximum=1,
        default=0.001,
    )
    quoting: dict[str, Literal["raw", "csv"]] = _help(
        "per dataset (flores, sib200, sentiment): how its TSV files are quoted, raw (a field is everything "
        "between tabs) or csv (pandas/csv.writer quoting); a dataset not listed: by its layout (.csv and the "
        "SIB-200 repository's data/annotated/<code>/ files csv, any other TSV raw)",
        default_factory=dict,
    )
    samples: bool = _help(
        "the local files are samples of the datasets: FLORES-200 devtest may hold fewer than the release's "
        "1012 sentences (otherwise an error)",
        default=False,
    )
    paper_compat: bool = _help("reproduce the original code's defects where a fix exists", default=False)
