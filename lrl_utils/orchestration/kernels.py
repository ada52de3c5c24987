"""Warm kernels: each run's Jupyter kernel is forked from a process that has already imported the libraries.

A notebook of this project spends ~5 s importing torch, transformers, adapters, datasets and scikit-learn
before its first line of work; the demo runs ~90 notebooks on 2 cores, so imports alone would cost minutes.
The runner therefore starts one *kernel server* (``python -m lrl_utils.orchestration.kernels SOCKET``) that imports
them once, then forks a fresh kernel process per request (a copy of the server's untouched, freshly imported
state: nothing is shared between runs); papermill drives it over its usual ZMQ connection file.

- :class:`WarmKernelManager` (passed to papermill) uses :class:`WarmProvisioner`, which asks the server named
  by ``$LRL_KERNEL_SERVER`` for the kernel and falls back to an ordinary launch when there is none (e.g. while
  the server is still importing), so a missing server only costs time.
- The kernel gets the run's environment, working directory and stdout/stderr (passed as file descriptors),
  its own session (signals go to its process group), and ``torch.set_num_threads($OMP_NUM_THREADS)``.
- The server kills a kernel whose client disconnected and exits with its parent (EOF on stdin).
The runner's per-run process (``python -m lrl_utils.orchestration.runner --_child ...``, which drives papermill) is
forked from the same server (:func:`run_module`), so it does not pay ~2 s of imports either.

Set ``LRL_WARM_KERNELS=0`` to launch every kernel and per-run process the ordinary way.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

SOCKET_ENV = "LRL_KERNEL_SERVER"
ENABLE_ENV = "LRL_WARM_KERNELS"
PRELOAD = (  # what the stage notebooks import; a module that fails to import is skipped
    "torch", "transformers", "transformers.models.bert.modeling_bert",
    "transformers.models.xlm_roberta.modeling_xlm_roberta", "transformers.generation",
    "adapters", "adapters.models.bert.mixin_bert", "datasets", "sklearn.metrics", "pandas", "pyarrow.parquet",
    "tqdm.auto", "matplotlib.pyplot", "matplotlib_inline.backend_inline", "IPython.core.pylabtools",
    "lrl_utils.orchestration.notebook", "lrl_utils.data.preprocess",
    "lrl_utils.training.base_model_stage", "lrl_utils.training.adapt", "lrl_utils.evaluation.pppl_stage",
    "lrl_utils.evaluation.finetune", "lrl_utils.orchestration.runner", "ipykernel.kernelapp", "papermill",
    "jupytext",
)  # fmt: skip
# Never imported by the server and its forks: jsonschema's optional `iri` format check (via papermill, nbformat)
# builds an Earley parser at import (~1.5 s, a fifth of the preload) for a format no notebook schema uses.
NOT_IMPORTED = ("rfc3987_syntax",)


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "1") != "0"


# --------------------------------------------------------------------------------------------------
# Server side


def _read_line(conn: socket.socket, first: bytes) -> bytes:
    data = first
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("request cut short")
        data += chunk
    return data


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass  # the client is gone; its kernel is killed when the server notices


def _kernel_child(request: dict, fds: list[int], server_sockets: list[socket.socket]) -> None:
    """In the forked process: become the kernel described by `request`; never returns."""
    code = 1
    try:
        for s in server_sockets:
            s.close()
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (devnull, *fds):
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if "torch" in sys.modules and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        if request.get("module"):  # a Python module run as a script (the runner's per-run process)
            sys.argv = [request["module"], *request["argv"]]
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
            return  # `finally` exits
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        if os.environ.get("JPY_PARENT_PID", "").isdigit():  # read by ipykernel at import: in the server
            sys.argv.append(f"--IPKernelApp.parent_handle={os.environ['JPY_PARENT_PID']}")
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:  # the interpreter's rules: None -> 0, an int -> itself, else printed -> 1
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> None:
    """Import `preload`, listen on the Unix socket `path`, fork a kernel per request until stdin closes."""
    for name in NOT_IMPORTED:
        sys.modules.setdefault(name, None)  # `import name` raises ImportError
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing optional module only makes kernels slower
            print(f"kernel server: cannot preload {name}: {exc}", file=sys.stderr)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(sys.stdin, selectors.EVENT_READ, "parent")
    kernels: dict[socket.socket, int] = {}
    print("ready", flush=True)
    try:
        while True:
            for key, _ in sel.select(timeout=0.1):
                if key.data == "parent" and not os.read(sys.stdin.fileno(), 1 << 10):
                    return  # the runner is gone
                if key.data == "accept":
                    conn, _ = listener.accept()
                    try:
                        first, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
                        request = json.loads(_read_line(conn, first))
                    except (OSError, ValueError) as exc:
                        print(f"kernel server: bad request ({exc})", file=sys.stderr)
                        conn.close()
                        continue
                    pid = os.fork()
                    if pid == 0:
                        _kernel_child(request, fds, [listener, conn, *kernels])
                    for fd in fds:
                        os.close(fd)
                    kernels[conn] = pid
                    sel.register(conn, selectors.EVENT_READ, "client")
                    _send(conn, {"pid": pid})
                elif key.data == "client":
                    conn = key.fileobj
                    data = conn.recv(1 << 10)  # type: ignore[union-attr]
                    if not data:  # the client died: its kernel must not outlive it
                        _signal(kernels[conn], signal.SIGKILL)  # type: ignore[index]
            for conn, pid in list(kernels.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                    sel.unregister(conn)
                    conn.close()
                    del kernels[conn]
    finally:
        for pid in kernels.values():
            _signal(pid, signal.SIGKILL)
        listener.close()
        Path(path).unlink(missing_ok=True)


def _signal(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # the kernel leads its own process group
    except OSError:
        pass


@contextmanager
def kernel_server(env: dict[str, str], log_file: Path, wait: float = 0.0):
    """Start the server in the background with `env`; yield `env` plus the variable naming its socket.

    Until the server has imported everything, kernels start the ordinary way; the runner and a SLURM task start
    it before their first run and wait for it (`wait`: seconds to wait for it to be ready before yielding; 0: do
    not wait).
    """
    if not enabled():
        yield dict(env)
        return
    path = f"/tmp/lrl-kernels-{uuid.uuid4().hex[:12]}.sock"  # Unix socket paths: at most 107 bytes
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lrl_utils.orchestration.kernels", path],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while wait and not os.path.exists(path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield {**env, SOCKET_ENV: path}
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        # still importing (no socket yet): it has forked no kernel, and would read EOF only after its imports
        if not os.path.exists(path):
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        Path(path).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Client side: a provisioner whose "process" lives in the server


class WarmProcess:
    """The part of `subprocess.Popen` that jupyter_client's LocalProvisioner uses, for a forked kernel."""

    stdin = stdout = stderr = None

    def __init__(self, conn: socket.socket, pid: int):
        self.conn, self.pid, self.returncode = conn, pid, None
        self._buffer = b""

    @classmethod
    def start(
        cls,
        path: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        fds: tuple[int, int] | None = None,
        module: str | None = None,
    ) -> WarmProcess:
        """Ask the server at `path` for a kernel (or, with `module`, for `python -m module *argv`).

        `fds`: the child's stdout and stderr (default: ours).
        """
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(30)
        try:
            conn.connect(path)
            request = {"argv": argv, "env": env, "cwd": cwd, "module": module}
            message = (json.dumps(request) + "\n").encode()
            sys.stdout.flush()
            sys.stderr.flush()
            socket.send_fds(conn, [message], list(fds or (sys.stdout.fileno(), sys.stderr.fileno())))
            process = cls(conn, -1)
            reply = process._next_message(timeout=30)
            if reply is None or "pid" not in reply:
                raise OSError(f"kernel server did not start a kernel: {reply}")
            process.pid = reply["pid"]
            return process
        except BaseException:
            conn.close()
            raise

    def _next_message(self, timeout: float | None) -> dict | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            self.conn.settimeout(None if deadline is None else max(0.0, deadline - time.monotonic()))
            try:
                chunk = self.conn.recv(1 << 10)
            except (TimeoutError, BlockingIOError):
                return None
            if not chunk:
                return {"exit": -signal.SIGKILL}  # the server is gone, and so is the kernel
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def poll(self) -> int | None:
        if self.returncode is None:
            message = self._next_message(timeout=0)
            if message is not None and "exit" in message:
                self.returncode = message["exit"]
                self.conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("warm kernel", timeout or 0)
            time.sleep(0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.killpg(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def run_module(env: dict[str, str], module: str, argv: list[str], cwd: str, log_fd: int) -> int | None:
    """Run `python -m module *argv` forked from the server named in `env`; its exit code, or None if the
    server is not available (the caller then starts an ordinary process). Output goes to `log_fd`."""
    path = env.get(SOCKET_ENV, "")
    if not path or not os.path.exists(path):
        return None
    try:
        process = WarmProcess.start(path, argv, env, cwd, fds=(log_fd, log_fd), module=module)
    except OSError:
        return None
    return process.wait()


def _this_environment(python: str) -> bool:
    """Whether the kernelspec's interpreter is this environment's (the same `bin/` folder, links resolved: a
    checkout reached through a symlink, or a venv folder that is one, is still the same environment)."""
    here = os.path.realpath(os.path.dirname(sys.executable))
    return os.path.realpath(os.path.dirname(python)) == here and os.path.basename(python).startswith("python")


def _provisioner_classes():
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    class WarmProvisioner(LocalProvisioner):
        """LocalProvisioner that gets its kernel process from the kernel server when one is running."""

        async def launch_kernel(self, cmd: list[str], **kwargs):
            path = os.environ.get(SOCKET_ENV, "")
            if "ipykernel_launcher" in cmd and _this_environment(cmd[0]) and os.path.exists(path):
                argv = cmd[cmd.index("ipykernel_launcher") + 1 :]
                cwd = str(kwargs.get("cwd") or os.getcwd())
                try:
                    env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}
                    self.process = WarmProcess.start(path, argv, env, cwd)
                except OSError as exc:
                    self.log.warning("warm kernel unavailable (%s); starting an ordinary one", exc)
                else:
                    self.pid = self.pgid = self.process.pid
                    self.cwd = cwd
                    return self.connection_info
            return await super().launch_kernel(cmd, **kwargs)

    class WarmKernelManager(AsyncKernelManager):
        """AsyncKernelManager whose kernels come from the kernel server (see the module docstring).

        Its kernels listen on IPC (Unix) sockets named after their connection files: with TCP, a port chosen as
        free by one run can be taken by another run's kernel before it binds ("Address already in use").
        """

        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")  # socket files <ip>-1 ... <ip>-5, unique per kernel:
            kwargs.setdefault(
                "ip", os.path.join(tempfile.gettempdir(), f"lrl-kernel-{uuid.uuid4().hex[:12]}")
            )
            super().__init__(**kwargs)

        async def _async_pre_start_kernel(self, **kw):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = WarmProvisioner(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
            return await super()._async_pre_start_kernel(**kw)

    return WarmProvisioner, WarmKernelManager


def kernel_manager_class():
    """The kernel manager for papermill: IPC sockets; warm kernels when the server variable names a live server."""
    return _provisioner_classes()[1]


if __name__ == "__main__":
    serve(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    # nothing left to tidy: skip the interpreter's teardown of torch & co. (~2 s the runner waits)
    os._exit(0)
