"""Benchmark: ConceptNet dump -> sentences of the paper's 30 languages, by `lrl_utils.data.conceptnet`.

    .venv/bin/python benchmarks/conceptnet_convert.py            # 3M lines; ~5 min the first time
    .venv/bin/python benchmarks/conceptnet_convert.py --lines 300000 --small-lines 100000 --repeats 1

1. Generates (once; cached in benchmarks/.cache/, git-ignored) a dump in the real assertions format: gzip,
   five tab-separated columns `edge URI, /r/Relation, start, end, JSON metadata`, about a third of the
   lines starting in the 30 languages (params/profiles/paper.yaml, their `iso2` in params/languages.yaml)
   in the proportions of the real 5.7 dump (SPEC §2), written in each language's script, with POS suffixes,
   ExternalURL ends and loanwords (same surface); a third starting in English; a third noise: 24 other
   languages, ends in the 30 languages (which must not count: the start node decides), dbpedia relations.
2. Times, each in its own process, with its peak RSS (`ru_maxrss`), interleaved over `--repeats` rounds:
   - floor: `zcat dump | wc -l` (the decompression floor);
   - ours: `convert_conceptnet(dump, 30 languages, out_dir)` (fixed surface forms) and the same with
     `paper_compat=True`;
   - original: a straightforward re-implementation of the original two scripts (cn_parser.py, cn_to_nl.py):
     every line parsed into one in-memory dict {language: [(start, relation, end)]} for all languages,
     saved as JSON, loaded again, and verbalised for the 30 languages.
   Our `paper_compat=True` output must equal the original's, file by file.
3. Measures our and the original's peak memory at a second, smaller dump size.
4. Writes benchmarks/results/<name>-<date>.json with the numbers and their provenance.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 2

# Edges starting in each language in the real 5.7 dump: (all, end in the same language, end in English); SPEC §2
REAL_COUNTS = {
    "am": (2273, 73, 2043), "uz": (6296, 146, 5614), "su": (2802, 35, 2646), "cy": (25507, 5671, 16793),
    "mr": (9198, 367, 6839), "te": (41847, 14392, 23823), "ku": (16008, 3687, 9341),
    "mk": (47833, 2557, 43449), "bn": (10979, 1314, 8757), "ka": (44660, 9434, 31854),
    "sk": (32058, 9052, 17775), "el": (112012, 34454, 62586), "th": (155060, 3507, 145040),
    "az": (20363, 3178, 14686), "lv": (84061, 21897, 53407), "sl": (110311, 75988, 15354),
    "he": (52365, 6946, 42005), "ro": (95016, 34928, 40671), "da": (91833, 30555, 47241),
    "ur": (17376, 1449, 13639), "si": (2248, 33, 2117), "yo": (2384, 16, 2322), "sw": (17048, 3940, 10582),
    "ug": (2151, 362, 953), "bo": (5961, 1912, 3897), "mt": (4933, 1463, 2117), "jv": (5949, 213, 5503),
    "ne": (5605, 65, 4054), "ms": (236012, 18573, 175410), "bg": (203272, 149658, 30893),
}  # fmt: skip
LETTERS = {  # a script's letters: (first, last) code points, or a string
    "Latn": "abcdefghijklmnopqrstuvwxyzáéíóúčšžăâîșțħġżëēāīū", "Cyrl": (0x430, 0x44F), "Grek": (0x3B1, 0x3C9),
    "Hebr": (0x5D0, 0x5EA), "Geor": (0x10D0, 0x10F0), "Beng": (0x995, 0x9B9), "Arab": (0x628, 0x64A),
    "Telu": (0xC15, 0xC39), "Deva": (0x915, 0x939), "Ethi": (0x1200, 0x1248), "Sinh": (0xD9A, 0xDC6),
    "Tibt": (0xF40, 0xF6C), "Thai": (0xE01, 0xE2E),
}  # fmt: skip
NOISE_LANGUAGES = "fr de ja es it ru pt nl fi zh la pl sv sh ca cs hu tr ar fa hi ko eo nn".split()
LRL_RELATIONS = {  # start in one of the 30 languages (the paper's top relations, SPEC §2)
    "Synonym": 44, "RelatedTo": 34, "FormOf": 5, "DerivedFrom": 3, "EtymologicallyRelatedTo": 3,
    "HasContext": 2, "IsA": 2, "Antonym": 2, "ExternalURL": 2, "DistinctFrom": 1, "SimilarTo": 1,
    "PartOf": 0.5, "EtymologicallyDerivedFrom": 0.5,
}  # fmt: skip
OTHER_RELATIONS = {  # English and noise starts
    "RelatedTo": 30, "Synonym": 12, "FormOf": 10, "IsA": 8, "ExternalURL": 6, "AtLocation": 4, "UsedFor": 4,
    "HasContext": 4, "DerivedFrom": 4, "CapableOf": 3, "HasProperty": 2, "PartOf": 2, "dbpedia/genre": 2,
    "NotDesires": 1, "Antonym": 3, "Desires": 1, "HasPrerequisite": 1, "MotivatedByGoal": 1, "Causes": 1,
    "HasSubevent": 1,
}  # fmt: skip
LRL_NAMES, LRL_WEIGHTS = list(LRL_RELATIONS), list(LRL_RELATIONS.values())
OTHER_NAMES, OTHER_WEIGHTS = list(OTHER_RELATIONS), list(OTHER_RELATIONS.values())
SUFFIXES = ["", "", "", "", "/n", "/n", "/v", "/a", "/n/wn/communication", "/n/wp/topic"]
METADATA = [
    {"dataset": "/d/wiktionary/en", "license": "cc:by-sa/4.0", "sources": [{"contributor":
     "/s/resource/wiktionary/en", "process": "/s/process/wikiparsec/2"}], "weight": 1.0},
    {"dataset": "/d/wiktionary/fr", "license": "cc:by-sa/4.0", "sources": [{"contributor":
     "/s/resource/wiktionary/fr", "process": "/s/process/wikiparsec/2"}], "weight": 1.0},
    {"dataset": "/d/conceptnet/4/en", "license": "cc:by/4.0", "sources": [{"activity":
     "/s/activity/omcs/omcs1_possibly_free_text", "contributor": "/s/contributor/omcs/bedume"}],
     "surfaceEnd": "a thing", "surfaceStart": "something", "surfaceText": "[[something]] is related to [[a thing]]",
     "weight": 1.0},
    {"dataset": "/d/verbosity", "license": "cc:by/4.0", "sources": [{"contributor": "/s/resource/verbosity"}],
     "surfaceText": "[[x]] is a kind of [[y]]", "weight": 0.5},
]  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# The dump


def paper_languages() -> list[tuple[str, str]]:
    """(ConceptNet code, script) of the paper's 30 languages, from the registry."""
    from lrl_utils.config.profiles import load_profile

    profile, registry = load_profile("paper")
    return [
        (registry.languages[c].iso2, registry.languages[c].flores.split("_")[1]) for c in profile.languages
    ]


def _pool(rng: random.Random, script: str, n: int) -> list[str]:
    spec = LETTERS[script]
    letters = spec if isinstance(spec, str) else "".join(map(chr, range(spec[0], spec[1] + 1)))
    words = set()
    while len(words) < n:
        word = "".join(rng.choices(letters, k=rng.randint(2, 9)))
        words.add(
            word + "_" + "".join(rng.choices(letters, k=rng.randint(2, 6))) if rng.random() < 0.1 else word
        )
    return sorted(words)


def generate_dump(path: Path, n_lines: int, seed: int = 0) -> dict:
    """Write a gzipped assertions dump of `n_lines` lines; returns its make-up."""
    rng = random.Random(seed)
    languages = paper_languages()
    size = max(50, min(3000, n_lines // 300))  # words per language (3000 from 900k lines on)
    pools = {code: _pool(rng, script, size) for code, script in languages}
    pools["en"] = _pool(rng, "Latn", 7 * size)
    for code in NOISE_LANGUAGES:
        pools[code] = _pool(rng, "Latn", size)
    codes = [code for code, _ in languages]
    weights = [REAL_COUNTS[code][0] for code in codes]
    metas = [json.dumps(m, ensure_ascii=False) for m in METADATA for _ in range(3 if m is METADATA[0] else 1)]
    kinds = {"start in the 30 languages": 0, "start in English": 0, "start in another language": 0}
    size_bytes = 0
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        for chunk_start in range(0, n_lines, 100_000):
            lines = []
            for _ in range(chunk_start, min(n_lines, chunk_start + 100_000)):
                r = rng.random()
                if r < 1 / 3:
                    lang = rng.choices(codes, weights)[0]
                    relation = rng.choices(LRL_NAMES, LRL_WEIGHTS)[0]
                    total, same, english = REAL_COUNTS[lang]
                    u = rng.random() * total
                    end_lang = (
                        lang if u < same else "en" if u < same + english else rng.choice(NOISE_LANGUAGES)
                    )
                    kind = "start in the 30 languages"
                else:
                    lang = "en" if r < 2 / 3 else rng.choice(NOISE_LANGUAGES)
                    relation = rng.choices(OTHER_NAMES, OTHER_WEIGHTS)[0]
                    end_lang = (
                        rng.choice(codes) if rng.random() < 0.1 else "en" if rng.random() < 0.7 else lang
                    )
                    kind = "start in English" if lang == "en" else "start in another language"
                kinds[kind] += 1
                word = rng.choice(pools[lang])
                start = f"/c/{lang}/{word}{rng.choice(SUFFIXES)}"
                if relation == "ExternalURL":
                    end = f"http://{lang}.dbpedia.org/resource/{word.capitalize()}"
                else:
                    end_word = word if rng.random() < 0.015 else rng.choice(pools[end_lang])  # loanwords
                    end = f"/c/{end_lang}/{end_word}{rng.choice(SUFFIXES)}"
                meta = rng.choice(metas)
                lines.append(f"/a/[/r/{relation}/,{start}/,{end}/]\t/r/{relation}\t{start}\t{end}\t{meta}\n")
            data = "".join(lines).encode("utf-8")
            size_bytes += len(data)
            f.write(data)
    os.replace(tmp, path)
    return {
        "lines": n_lines,
        "bytes": size_bytes,
        "mean_line_bytes": round(size_bytes / max(n_lines, 1), 1),  # the real 5.7 dump: about 280
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "kinds": kinds,
    }


def cached_dump(cache: Path, n_lines: int, seed: int) -> tuple[Path, dict]:
    path = cache / f"assertions-{n_lines}-s{seed}-v{GENERATOR_VERSION}.csv.gz"
    info = path.with_suffix(".json")
    if not (path.exists() and info.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        made = generate_dump(path, n_lines, seed)
        made["generation_seconds"] = round(time.perf_counter() - t0, 1)
        info.write_text(json.dumps(made, indent=1), encoding="utf-8")
    return path, json.loads(info.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------------------
# The converters, run in a child process each (`--_measure`)


def original_approach(dump: Path, languages: list[str], out_dir: Path) -> None:
    """The original two scripts: every edge in one dict by start language, JSON, then the sentences."""
    from lrl_utils.data.conceptnet_templates import CONCEPTNET_TEMPLATES

    by_language: dict[str, list] = {}
    with gzip.open(dump, "rt", encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split("\t")
            if len(parts) < 4 or parts[3].startswith("http://"):
                continue
            by_language.setdefault(parts[2].split("/")[2], []).append((parts[2], parts[1], parts[3]))
    with open(out_dir / "conceptnet.json", "w", encoding="utf-8") as f:
        json.dump(by_language, f, ensure_ascii=False)
    del by_language
    with open(out_dir / "conceptnet.json", encoding="utf-8") as f:
        by_language = json.load(f)
    for lang in languages:
        sentences = []
        for start_uri, relation_uri, end_uri in by_language.get(lang, []):
            start = start_uri.split("/")[-1].replace("_", " ")
            end = end_uri.split("/")[-1].replace("_", " ")
            relation = relation_uri.split("/")[-1]
            if start != end and relation in CONCEPTNET_TEMPLATES:
                sentences.append(f"{start} {CONCEPTNET_TEMPLATES[relation]} {end}.")
        (out_dir / f"{lang}.txt").write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    (out_dir / "conceptnet.json").unlink()


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM on Linux, which (unlike ru_maxrss, which a process inherits
    through fork and exec from its parent's high-water mark) starts afresh in each program; else ru_maxrss."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:"))) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
            1024**2 if sys.platform == "darwin" else 1024
        )


def measure(kind: str, dump: Path, out_dir: Path, languages: list[str]) -> dict:
    """Run one converter in this process; seconds exclude the interpreter's start and imports."""
    from lrl_utils.data.conceptnet import convert_conceptnet

    out_dir.mkdir(parents=True, exist_ok=True)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    if kind == "original":
        original_approach(dump, languages, out_dir)
        kept = None
    else:
        stats = convert_conceptnet(dump, languages, out_dir, paper_compat=kind == "ours_paper_compat")
        kept = sum(st["kept"] for st in stats["languages"].values())
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    return {"seconds": seconds, "max_rss_mb": peak, "rss_before_mb": rss_before, "kept": kept}


def _child(kind: str, dump: Path, out_dir: Path, languages: list[str]) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_measure",
        kind,
        "--_dump",
        str(dump),
        "--_out",
        str(out_dir),
    ]
    cmd += ["--_languages", ",".join(languages)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{kind} on {dump.name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _floor(dump: Path) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run(f"zcat '{dump}' | wc -l", shell=True, capture_output=True, text=True, check=True)
    return {"seconds": time.perf_counter() - t0, "lines": int(done.stdout)}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.txt"))}


# ----------------------------------------------------------------------------------------------------------
# Provenance and the run


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from lrl_utils.records.machine import cpu_model

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
        },
        "python": platform.python_version(),
        "torch": torch,
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty": bool(_git("status", "--porcelain"))},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def _summary(runs: list[dict], n_lines: int) -> dict:
    seconds = [r["seconds"] for r in runs]
    out = {"seconds": [round(s, 3) for s in seconds], "median_seconds": round(statistics.median(seconds), 3)}
    out["lines_per_second"] = round(n_lines / statistics.median(seconds))
    if "max_rss_mb" in runs[0]:
        out["max_rss_mb"] = round(max(r["max_rss_mb"] for r in runs), 1)
        out["rss_before_mb"] = round(max(r["rss_before_mb"] for r in runs), 1)
    return out


def run(args: argparse.Namespace) -> dict:
    cache, languages = Path(args.cache_dir), [code for code, _ in paper_languages()]
    prov = provenance()
    dump, made = cached_dump(cache, args.lines, args.seed)
    small_dump, _ = cached_dump(cache, args.small_lines, args.seed)
    out = cache / f"out-{os.getpid()}"
    kinds = ("floor", "ours", "ours_paper_compat", "original")
    runs: dict[str, list[dict]] = defaultdict(list)
    identical = None
    try:
        for round_ in range(args.repeats):  # interleaved, so that a change of load hits all alike
            for kind in kinds:
                shutil.rmtree(out / kind, ignore_errors=True)
                runs[kind].append(
                    _floor(dump) if kind == "floor" else _child(kind, dump, out / kind, languages)
                )
            if round_ == 0:
                ours_digests = _digests(out / "ours_paper_compat")
                identical = ours_digests == _digests(out / "original") and len(ours_digests) == len(languages)
                sentences = sum(len(p.read_bytes().splitlines()) for p in (out / "ours").glob("*.txt"))
        small = {
            kind: _child(kind, small_dump, out / f"small-{kind}", languages) for kind in ("ours", "original")
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if runs["floor"][0]["lines"] != args.lines:
        raise RuntimeError(f"zcat counted {runs['floor'][0]['lines']} lines in {dump}, expected {args.lines}")
    summary = {kind: _summary(runs[kind], args.lines) for kind in kinds}
    ours, paper, original, floor = (summary[k]["median_seconds"] for k in ("ours", *kinds[2:], "floor"))
    prov["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "benchmark": "conceptnet_convert",
        "provenance": prov,
        "dump": {
            "file": dump.name,
            "lines": args.lines,
            "bytes_gzip": dump.stat().st_size,
            "languages": languages,
            **{k: v for k, v in made.items() if k not in ("lines",)},
        },
        "runs": summary,
        "ratios": {
            "original_over_ours": round(original / ours, 2),
            "original_over_ours_paper_compat": round(original / paper, 2),
            "ours_over_floor": round(ours / floor, 2),
            "ours_paper_compat_over_floor": round(paper / floor, 2),
            "aim": {"original_over_ours": ">= 4", "ours_over_floor": "<= 1.5"},
        },
        "memory": {
            "lines": [args.small_lines, args.lines],
            "ours_max_rss_mb": [round(small["ours"]["max_rss_mb"], 1), summary["ours"]["max_rss_mb"]],
            "original_max_rss_mb": [
                round(small["original"]["max_rss_mb"], 1),
                summary["original"]["max_rss_mb"],
            ],
        },
        "outputs": {
            "sentences_kept": sentences,
            "kept_reported": runs["ours"][0]["kept"],
            "paper_compat_identical_to_original": identical,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=3_000_000, help="lines of the dump timed")
    parser.add_argument("--small-lines", type=int, default=1_000_000, help="a second size, for peak memory")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (medians are reported)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated dump")
    parser.add_argument("--cache-dir", default=str(ROOT / "benchmarks" / ".cache"), help="generated dumps")
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--name", default="conceptnet_convert", help="results file: <name>-<date>.json")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    parser.add_argument("--_dump", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_languages", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._measure:
        print(
            json.dumps(measure(args._measure, Path(args._dump), Path(args._out), args._languages.split(",")))
        )
        return 0
    result = run(args)
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{args.name}-{datetime.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    r = result["ratios"]
    print(f"{path}: ours {result['runs']['ours']['lines_per_second']:,} lines/s; original/ours "
          f"{r['original_over_ours']}x; ours/floor {r['ours_over_floor']}x; memory {result['memory']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
