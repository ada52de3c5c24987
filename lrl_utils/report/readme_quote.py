"""The README's "What the demo shows" quotes `figures/findings.md` word for word, between two markers.

    python -m lrl_utils.report.readme_quote [--check] [--findings figures/findings.md] [--readme README.md]

replaces the block between `BEGIN` and `END` with the findings file (its title left out, its headings two levels
deeper so that they nest under the README's section); `--check` changes nothing and exits 1 when the block
differs. Run it after the timed demo run whose findings the README reports, so that no number is copied by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lrl_utils.records.results import atomic_write_text

BEGIN = "<!-- BEGIN figures/findings.md (python -m lrl_utils.report.readme_quote) -->"
END = "<!-- END figures/findings.md -->"


class QuoteError(ValueError):
    """The README has no (or a broken) findings block, or the findings file is not one."""


def quoted(findings_text: str) -> str:
    """The block for the README: `findings.md` without its `# ` title, its headings two levels deeper."""
    lines = findings_text.strip("\n").splitlines()
    if not lines or not lines[0].startswith("# "):
        raise QuoteError("the findings file does not start with its `# ` title: not a findings.md")
    body = "\n".join(lines[1:]).strip("\n")
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", body, flags=re.MULTILINE)


def _span(readme_text: str, readme_name: str) -> tuple[int, int]:
    """Where the quoted block lies: from the end of the `BEGIN` marker to the start of the `END` marker."""
    begin, end = readme_text.find(BEGIN), readme_text.find(END)
    if begin < 0 or end < begin or readme_text.count(BEGIN) != 1 or readme_text.count(END) != 1:
        raise QuoteError(f"{readme_name}: needs exactly one `{BEGIN}` line followed by one `{END}` line")
    return begin + len(BEGIN), end


def replace_block(readme_text: str, block: str, readme_name: str = "README.md") -> str:
    """`readme_text` with the block between the markers replaced by `block`."""
    start, end = _span(readme_text, readme_name)
    return readme_text[:start] + "\n\n" + block + "\n\n" + readme_text[end:]


def current_block(readme_text: str, readme_name: str = "README.md") -> str:
    """What the README quotes now (between the markers), stripped."""
    start, end = _span(readme_text, readme_name)
    return readme_text[start:end].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", default="figures/findings.md", type=Path)
    parser.add_argument("--readme", default="README.md", type=Path)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the README's block differs; write nothing"
    )
    args = parser.parse_args(argv)
    try:
        block = quoted(args.findings.read_text(encoding="utf-8"))
        readme = args.readme.read_text(encoding="utf-8")
        updated = replace_block(readme, block, str(args.readme))
    except (OSError, QuoteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        same = updated == readme
        print(f"{args.readme}: {'quotes' if same else 'does not quote'} {args.findings} as it is now")
        return 0 if same else 1
    if updated != readme:
        atomic_write_text(args.readme, updated)
    print(f"{args.readme}: quotes {args.findings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
