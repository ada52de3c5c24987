"""JupyterLab as a user opens the notebooks: jupytext settings that keep the tracked `.py` unchanged, and a real
browser session (Debian's chromium driven by Playwright) that opens a stage notebook and the figures notebook,
runs every cell and saves them.

The browser session works on a tiny throw-away project (a git repository holding copies of the tracked
notebooks, `jupytext.toml`, `.gitignore` and `params/`, with a tiny `demo` profile), so that it runs in minutes
and never touches this checkout: the kernel imports this checkout's `lrl_utils` (PYTHONPATH), and `LRL_ROOT`
points at the project, as it would for a user working in their own clone.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import pytest
from conftest import REPO, free_port, kill_tree, tiny_profile

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))
STAGE_NOTEBOOK, FIGURES_NOTEBOOK = "04_pppl.py", "07_figures.py"


def repo_config():
    from jupytext.config import load_jupytext_configuration_file

    return load_jupytext_configuration_file(str(REPO / "jupytext.toml"))


def show_diff(before: str, after: str) -> str:
    return "".join(list(difflib.unified_diff(before.splitlines(True), after.splitlines(True)))[:30])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_jupytext_rewrites_each_notebook_byte_for_byte(path):
    """Reading a notebook and writing it back with the repo's settings and the pinned jupytext changes nothing."""
    config = repo_config()
    text = path.read_text(encoding="utf-8")
    again = jupytext.writes(jupytext.read(path, config=config), fmt="py:percent", config=config)
    assert again == text, f"{path.name}: jupytext rewrites the header or cells:\n{show_diff(text, again)}"


def test_saving_from_jupyterlab_keeps_the_tracked_py(tmp_path):
    """The Jupyter contents manager's save path (what JupyterLab's save and autosave call) after a session:
    kernel metadata, widget state, outputs, execution counts and cell metadata a session adds. The `.py`
    stays byte-identical; outputs go to the paired, git-ignored `.ipynb` and are there on reopening."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    shutil.copy(REPO / "jupytext.toml", tmp_path)
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(root_dir=str(tmp_path))

    async def open_run_save(rel: str) -> dict:
        nb = (await manager.get(rel, content=True, type="notebook"))["content"]
        nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.2"}
        nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            cell["execution_count"] = i + 1
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"cell {i}\n"}]
            cell["metadata"].update(
                execution={"iopub.status.idle": "2026-01-01T00:00:00Z"},
                scrolled=True,
                collapsed=False,
                jupyter={"outputs_hidden": False},
            )
        await manager.save({"type": "notebook", "format": "json", "content": nb}, rel)
        return (await manager.get(rel, content=True, type="notebook"))["content"]

    for path in NOTEBOOKS:
        copy = tmp_path / "notebooks" / path.name
        reopened = asyncio.run(open_run_save(f"notebooks/{path.name}"))
        text, saved = path.read_text(encoding="utf-8"), copy.read_text(encoding="utf-8")
        assert saved == text, f"{path.name}: saving in JupyterLab rewrites it:\n{show_diff(text, saved)}"
        assert copy.with_suffix(".ipynb").exists(), f"{path.name}: not paired with an .ipynb"
        assert any(c.get("outputs") for c in reopened["cells"] if c["cell_type"] == "code")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", f"notebooks/{NOTEBOOKS[0].stem}.ipynb"], cwd=REPO
    )
    assert ignored.returncode == 0, "the paired .ipynb must be git-ignored"


# ---------------------------------------------------------------------------------------------------------------
# The browser session


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "chromium not found: the browser test needs Debian's chromium (scripts/install_browser.sh)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed: pip install -e '.[dev]' (scripts/setup_env.sh)")
    return path


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (its mtime too: a rewrite with equal bytes still counts)."""
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(
            folder
        ).as_posix(): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mtime_ns}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def tracked_notebooks(root: Path) -> dict[str, str]:
    """sha256 of each notebook `.py` (their bytes: jupytext may touch the file when it saves the pair)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.glob("notebooks/*.py"))}


def git(root: Path, *args: str) -> str:
    ident = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *ident, *args], cwd=root, check=True, capture_output=True, text=True).stdout


def notebook_defaults(name: str) -> dict:
    """The values of a notebook's `parameters` cell (what an interactive run uses)."""
    nb = jupytext.read(REPO / "notebooks" / name)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    values: dict = {}
    exec(cell.source, {}, values)
    return values


def make_project(root: Path) -> None:
    """A tiny project the way a user's clone looks: tracked files committed, the stage notebook's upstream runs
    and its own canonical run made by the runner, so that the figures notebook has a result to plot."""
    import yaml

    from lrl_utils.orchestration.grid import Grid
    from lrl_utils.orchestration.runner import ensure_kernel, main
    from lrl_utils.records.context import KEY_PARAMS

    root.mkdir()
    shutil.copytree(REPO / "params", root / "params")
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    for name in ("jupytext.toml", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    stage = notebook_defaults(STAGE_NOTEBOOK)
    profile = tiny_profile(languages=[stage["language"]], models=[stage["model"]], jobs=1)
    profile["base_model"]["train"].update(max_steps=4, eval_every=4, eval_batches=1)
    profile["pppl"] = {"max_sentences": 4, "max_length": 32}
    (root / "params" / "profiles" / f"{stage['profile']}.yaml").write_text(yaml.safe_dump(profile))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny project")
    ensure_kernel()
    spec = Grid(stage["profile"]).pppl(**{k: stage[k] for k in KEY_PARAMS["pppl"]})
    assert main(["--profile", stage["profile"], "--target", spec.folder()]) == 0


def start_server(root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`jupyter lab` from this environment on 127.0.0.1, a free port and a token, in a process group of its
    own; Jupyter's user config and settings are kept out (the venv's shipped settings are what is tested)."""
    port, token = free_port(), os.urandom(12).hex()
    env = {**os.environ, "LRL_ROOT": str(root), "LRL_RUNS": str(root / "runs"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env.pop("MPLBACKEND", None)  # as a user starts it: the kernel's inline matplotlib backend
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
    ]:
        env[var] = str(log.parent / "jupyter" / sub)
    # every cell in the page (JupyterLab 4 leaves cells outside the viewport out of it), so that what is
    # counted there is the whole notebook
    # (and no news pop-up over the page)
    for plugin, setting in [
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
        ("apputils-extension/notification", '{"fetchNews": "false"}'),
    ]:
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"], "@jupyterlab", f"{plugin}.jupyterlab-settings")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(setting)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    cmd += [f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--ServerApp.allow_root=True")
    with open(log, "wb") as out:
        server = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    return server, f"{url}/lab?token={token}"
        time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not answer in 120 s:\n{log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it shuts its kernels down), then SIGKILL to what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill_tree(server.pid)
        server.wait(timeout=10)


# What the page reports about an open notebook, read from JupyterLab's own models (`window.jupyterapp`).
STATE_JS = """(path) => {
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) { if (w.context && w.context.path === path) { panel = w; } }
  if (!panel) { return null; }
  if (!panel.node.classList.contains('jp-NotebookPanel')) { return {notebook: false}; }
  const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  const cells = [];
  for (const cell of panel.content.widgets) {
    const m = cell.model;
    cells.push({type: m.type, count: m.type === 'code' ? m.executionCount : null,
                outputs: m.type === 'code' ? m.outputs.toJSON() : []});
  }
  return {id: panel.id, notebook: true,
          kernel: kernel ? kernel.name : null, status: kernel ? kernel.status : null,
          dirty: panel.context.model.dirty, cells: cells,
          images: panel.node.querySelectorAll('.jp-OutputArea-output img').length,
          widgets: Array.from(panel.node.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets'))
                        .map(e => e.innerText)};
}"""

RUN_ALL_JS = """async (path) => {
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) { if (w.context && w.context.path === path) { panel = w; } }
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  app.commands.execute('notebook:run-all-cells');
}"""

SAVE_JS = """async (path) => {
  const app = window.jupyterapp;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path) { app.shell.activateById(w.id); await w.context.save(); }
  }
}"""


def finished(state: dict | None) -> bool:
    if not state or state["status"] != "idle":
        return False
    code = [c for c in state["cells"] if c["type"] == "code"]
    failed = any(o.get("output_type") == "error" for c in code for o in c["outputs"])
    return failed or all(c["count"] is not None for c in code)


def open_item(page, name: str, *, open_with: str | None = None) -> None:
    """Double-click an item of the file browser, or right-click → Open With → `open_with`. The listing may
    refresh under the mouse (a saved notebook's `.ipynb` appears), so the right-clicked item is checked."""
    item = page.locator(
        ".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name)
    ).first
    item.wait_for(timeout=60_000)
    if open_with is None:
        item.dblclick()
        return
    selected = page.locator(".jp-DirListing-item.jp-mod-selected .jp-DirListing-itemText")
    for _ in range(5):
        item.click(button="right")
        if selected.count() == 1 and selected.inner_text().strip() == name:
            break
        page.keyboard.press("Escape")
        time.sleep(1)
    else:
        raise AssertionError(f"could not right-click {name} in the file browser")
    page.locator(".lm-Menu-item", has_text="Open With").first.hover()
    page.locator(".lm-Menu-item", has_text=re.compile(f"^{open_with}$")).first.click()


def run_notebook(page, path: str, timeout: float = 900) -> dict:
    page.wait_for_function(f"() => {{ const f = {STATE_JS}; return f({path!r}) !== null; }}", timeout=120_000)
    state = page.evaluate(STATE_JS, path)
    assert state["notebook"], (
        f"{path} opened, but not as a notebook (the venv's default viewer for .py files?)"
    )
    page.evaluate(RUN_ALL_JS, path)
    deadline = time.monotonic() + timeout
    state = page.evaluate(STATE_JS, path)
    while not finished(state) and time.monotonic() < deadline:
        time.sleep(2)
        state = page.evaluate(STATE_JS, path)
    assert finished(state), f"{path}: not finished after {timeout} s: {state}"
    page.evaluate(SAVE_JS, path)
    page.wait_for_function(f"() => {{ const f = {STATE_JS}; return !f({path!r}).dirty; }}", timeout=60_000)
    return page.evaluate(STATE_JS, path)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One JupyterLab session: open the stage notebook (double-click) and the figures notebook (right-click →
    Open With → Notebook), run all cells of each, save both; return what the page and the disk show."""
    executable = chromium()
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "project"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LRL_ROOT", str(root))
        env.setenv("LRL_RUNS", str(root / "runs"))
        env.setenv("HF_HUB_OFFLINE", "1")
        make_project(root)
    return browser_session(root, base, executable)


def browser_session(root: Path, base: Path, executable: str) -> dict:
    from playwright.sync_api import sync_playwright

    before = {"figures": digests(root / "figures"), "repo_figures": digests(REPO / "figures")}
    before["notebooks"] = tracked_notebooks(root)
    server, url = start_server(root, base / "jupyter.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=["--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                try:
                    page.goto(url)
                    open_item(page, "notebooks")
                    open_item(page, STAGE_NOTEBOOK)
                    stage = run_notebook(page, f"notebooks/{STAGE_NOTEBOOK}")
                    pair = f"{Path(STAGE_NOTEBOOK).stem}.ipynb"  # the listing refreshes once it has the pair
                    page.locator(".jp-DirListing-itemText", has_text=pair).first.wait_for(timeout=60_000)
                    open_item(page, FIGURES_NOTEBOOK, open_with="Notebook")
                    figures = run_notebook(page, f"notebooks/{FIGURES_NOTEBOOK}")
                except Exception:
                    page.screenshot(path=base / "failure.png")  # what the page showed, next to jupyter.log
                    raise
            finally:
                browser.close()
    finally:
        stop_server(server)
    return {
        "root": root,
        "log": base / "jupyter.log",
        "stage": stage,
        "figures": figures,
        "before": before,
        "after": {
            "figures": digests(root / "figures"),
            "repo_figures": digests(REPO / "figures"),
            "notebooks": tracked_notebooks(root),
        },
        "git_status": git(root, "status", "--porcelain", "--", "notebooks/"),
        "ignored": git(root, "status", "--porcelain", "--ignored", "--", "notebooks/"),
    }


def outputs_text(state: dict) -> str:
    parts = []
    for cell in state["cells"]:
        for out in cell["outputs"]:
            text = out.get("text") or out.get("data", {}).get("text/plain") or ""
            parts.append(text if isinstance(text, str) else "".join(text))
    return "\n".join(parts)


@pytest.mark.slow
def test_notebooks_open_as_notebooks_and_run_without_errors(session):
    for name in ("stage", "figures"):
        state = session[name]
        assert state["notebook"], f"{name}: not opened as a notebook"
        assert state["kernel"] == "lrl-adapt", f"{name}: kernel {state['kernel']}"
        errors = [o for c in state["cells"] for o in c["outputs"] if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        assert all(c["count"] is not None for c in state["cells"] if c["type"] == "code")
        text = outputs_text(state)
        assert "TqdmWarning" not in text and "IProgress not found" not in text, f"{name}: {text[-2000:]}"
    # the stage notebook's progress bar is a widget (ipywidgets), finished, and its plot is shown
    widgets = session["stage"]["widgets"]
    assert any("100%" in text for text in widgets), (widgets, outputs_text(session["stage"])[-2000:])
    assert session["stage"]["images"] >= 1


@pytest.mark.slow
def test_the_session_leaves_tracked_files_unchanged(session):
    """Saved notebooks: the tracked `.py` unchanged (git and bytes), the paired `.ipynb` ignored; the
    checkout's own `figures/` untouched."""
    assert session["git_status"] == "", session["git_status"]
    assert session["after"]["notebooks"] == session["before"]["notebooks"]
    assert f"!! notebooks/{Path(STAGE_NOTEBOOK).stem}.ipynb" in session["ignored"]
    assert session["after"]["repo_figures"] == session["before"]["repo_figures"]


@pytest.mark.slow
def test_the_figures_notebook_shows_its_figures(session):
    """Item 1: each figure is displayed as an image (`image/png`), in the page and in the saved notebook."""
    state = session["figures"]
    png = [o for c in state["cells"] for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert state["images"] >= 1 and png, outputs_text(state)[-2000:]


@pytest.mark.slow
def test_an_interactive_run_leaves_the_canonical_figures_untouched(session):
    """Item 2: an interactive run writes only under `runs/_interactive/`, never into the project's `figures/`."""
    changed = set(session["after"]["figures"].items()) ^ set(session["before"]["figures"].items())
    assert not changed, sorted({k for k, _ in changed})[:10]
