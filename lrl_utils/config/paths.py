"""Where things live: the project root, run folders, generated data and figures.

The root is `$LRL_ROOT` when set, else the nearest folder above the current directory that holds
`params/profiles`, else the folder above this package (an editable install). Run outputs go to
`$LRL_RUNS` (default `<root>/runs`). Paths stored inside run specs are relative to the root, so that
hashes do not depend on where the project is checked out; a data path a profile gives relative to the root
(`../shared/data/sib200`, outside it) is stored as written, normalised (`data_path`).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("LRL_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params" / "profiles").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


def runs_dir() -> Path:
    env = os.environ.get("LRL_RUNS")
    return Path(env).resolve() if env else project_root() / "runs"


def data_dir() -> Path:
    """Generated data (the demo world); never committed."""
    return project_root() / "data"


def figures_dir() -> Path:
    return project_root() / "figures"


def params_dir() -> Path:
    return project_root() / "params"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path for a path stored in a spec (relative to the project root) or given by a user."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


def relative(path: str | os.PathLike) -> str:
    """The form stored in specs: relative to the project root when inside it, else absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(project_root()).as_posix()
    except ValueError:
        return p.as_posix()


def data_path(written: str) -> str:
    """The form of a profile's data path stored in specs: `hub` and URLs unchanged; a relative path (to the
    root, even one leading outside it: `../shared/data`) normalised as written, so that its hash does not
    depend on where the project is checked out; an absolute path relative to the root when inside it."""
    if written == "hub" or written.startswith(("http://", "https://")):
        return written
    expanded = os.path.expanduser(written)
    if not os.path.isabs(expanded):
        return posixpath.normpath(Path(expanded).as_posix())
    return relative(expanded)
