"""--reload: the master watches the application's files and replaces the workers when one changes.

Theory of operation
-------------------
The master never imports the application, so it cannot ask ``sys.modules`` what to watch (Gunicorn's
workers do). It watches the application's directories instead: every ``*.py`` file under the current
directory (after --chdir) and under each --pythonpath entry, recursively, skipping hidden files and
directories, ``__pycache__``, virtualenvs (a directory holding ``pyvenv.cfg``), ``site-packages``,
``dist-packages`` and ``node_modules``; plus each --reload-extra-file (templates, configuration...).

Two engines:

- ``poll``: ``FileWatcher.changed()`` is called from the master's loop; at most once a second it walks
  the roots and compares each file's (mtime, size, inode) with the last walk. A file that appears or
  disappears is a change too.
- ``watchfiles`` (inotify on Linux, through the watchfiles package): a daemon thread in the master runs
  ``watchfiles.watch()`` on the roots, filtered by the same rules, records the changed paths and
  writes a byte to the master's wake-up pipe. The thread never logs (the master forks while it runs;
  a forked child has no such thread and never touches the watcher). If it fails (say the inotify watch
  limit is reached), the master logs why and falls back to polling.

``auto`` is watchfiles when it can be imported, else poll. Whatever the engine, the extra files and
the files reported by failing workers (below) are polled once a second: there are few of them, and a
stat survives what an inotify watch on a single file does not (an editor replacing the file).

When something changed, the master logs "Reloading: FILE changed" and starts a new generation of
workers, exactly as HUP does, without re-reading the configuration (only HUP does that): the old
workers stop once the new ones are READY.

A worker whose application fails to import (a SyntaxError after an edit) does not stop the server
under --reload: it logs the traceback and serves it as a 500 page (``error_app``) until a change to a
watched file replaces it. It also tells the master, through a pipe, which files the traceback names
(``report_failure``), so that a broken module outside the roots is watched too and fixing it reloads.

Differences from Gunicorn (documented: reload, reload_engine, reload_extra_files)
------------------------------------------------------------------------------------
- Gunicorn watches, in each worker, every module in ``sys.modules`` (site-packages included), and a
  changed file makes that worker exit at once. pronghorn watches the application's directories from
  the master and replaces workers with a hand-over, so no request is refused during a reload. A module
  imported from elsewhere (not under the current directory or --pythonpath, e.g. through the
  PYTHONPATH variable or an installed package) is not watched until it fails to import; add its
  directory with --pythonpath or its files with --reload-extra-file. A new ``*.py`` file under a root
  counts as a change; Gunicorn ignores it until something imports it.
- Engines: ``auto``, ``poll``, ``watchfiles``; Gunicorn's ``inotify`` is accepted as another name for
  ``watchfiles`` (which uses inotify on Linux).
- Gunicorn serves the traceback page only for a SyntaxError; pronghorn does for any exception raised
  while importing the app, since every one of them is fixed by editing a file.
- --reload-extra-file: Gunicorn refuses a file that does not exist; pronghorn warns and watches for it
  to appear. Entries holding ``*``, ``?`` or ``[`` are glob patterns (``**`` recurses), expanded again
  at every check, as Gunicorn 26.1 does. Relative paths are taken from the directory after --chdir.
  As in Gunicorn, the extra files do nothing without --reload (pronghorn says so in the log).
- Gunicorn documents the reloader as incompatible with --preload; pronghorn ignores --preload under
  --reload (with a warning): a master that held the app would fork workers with the old code.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from ..config import Config

# The names --reload-engine accepts; Gunicorn's "inotify" means watchfiles here.
ENGINES = ("auto", "poll", "watchfiles")
ALIASES = {"inotify": "watchfiles"}
MISSING_WATCHFILES = ("--reload-engine {} needs the watchfiles package, which is not installed: "
                      "pip install watchfiles")
SKIP_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules"})
POLL_INTERVAL = 1.0
# How many files one failing worker reports, at most (a traceback through a framework is long).
MAX_REPORTED = 50

_Key = tuple[int, int, int]


class ReloadError(Exception):
    """--reload cannot work as configured (the message says why, in one line)."""


# -- configuration ---------------------------------------------------------------------------------------


def engine_problem(name: str, reload: bool) -> tuple[str, str] | None:
    """What is wrong with --reload-engine ``name``, as (kind, message), or None. ``kind`` is "name"
    for a value that is not an engine, "missing" for watchfiles asked for but not installed."""
    if ALIASES.get(name, name) not in ENGINES:
        return "name", f"{name!r} is not one of {', '.join(ENGINES)}"
    if reload:
        try:
            resolve_engine(name)
        except ReloadError as exc:
            return "missing", str(exc)
    return None


def resolve_engine(name: str) -> str:
    """The engine that runs for --reload-engine ``name``: "poll" or "watchfiles"."""
    given, name = name, ALIASES.get(name, name)
    if name == "poll":
        return "poll"
    if name not in ("auto", "watchfiles"):
        raise ReloadError(f"--reload-engine: {name!r} is not one of {', '.join(ENGINES)}")
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        if name == "auto":
            return "poll"
        raise ReloadError(MISSING_WATCHFILES.format(given)) from None
    return "watchfiles"


def watch_roots(cfg: Config) -> list[str]:
    """The application's directories: the current one (after --chdir) and each --pythonpath entry."""
    roots: list[str] = []
    for path in [os.getcwd(), *(p for p in (cfg.pythonpath or "").split(",") if p)]:
        path = os.path.abspath(path)
        if os.path.isdir(path) and path not in roots:
            roots.append(path)
    return roots


def configure(current: FileWatcher | None, cfg: Config, log: logging.Logger,
              wake_fd: int) -> FileWatcher | None:
    """The watcher that ``cfg`` asks for: None without --reload, ``current`` when nothing that
    matters changed (a HUP usually changes nothing here), else a new one, started."""
    if not cfg.reload:
        if cfg.reload_extra_files:
            log.warning("--reload-extra-file has no effect without --reload")
        if current is not None:
            current.stop()
        return None
    roots = watch_roots(cfg)
    extra = [os.path.abspath(path) for path in cfg.reload_extra_files]
    if current is not None and (current.requested, current.roots, current.extra_files) == (
            cfg.reload_engine, roots, extra):
        current.log = log  # a HUP may have set the logs up anew
        return current
    try:
        engine = resolve_engine(cfg.reload_engine)
    except ReloadError as exc:  # the command line was checked; a HUP'd config file may still ask
        log.error("%s; polling instead", exc)
        engine = "poll"
    if current is not None:
        current.stop()
    watcher = FileWatcher(roots, extra, engine, log, wake_fd, requested=cfg.reload_engine)
    watcher.start()
    return watcher


# -- what is watched -------------------------------------------------------------------------------------


def _skipped_dir(name: str, path: str) -> bool:
    return (name.startswith(".") or name in SKIP_DIRS
            or os.path.exists(os.path.join(path, "pyvenv.cfg")))


def iter_sources(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every watched ``*.py`` file under ``root``, with its stat."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not _skipped_dir(name, entry.path):
                            stack.append(entry.path)
                    elif name.endswith(".py"):
                        yield entry.path, entry.stat()
                except OSError:
                    continue  # gone meanwhile, or a dangling symlink


def _key(st: os.stat_result) -> _Key:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


# -- the watcher -----------------------------------------------------------------------------------------


class FileWatcher:
    """Watches ``roots`` (``*.py``, recursively) and ``extra_files``; ``changed()`` says what changed
    since it was last asked. Lives in the master; ``report_w`` is the pipe failing workers write to."""

    def __init__(self, roots: list[str], extra_files: list[str], engine: str, log: logging.Logger,
                 wake_fd: int = -1, requested: str | None = None,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.roots = roots
        self.extra_files = extra_files
        self.engine = engine
        self.requested = requested or engine
        self.log = log
        self.poll_interval = poll_interval
        self._wake_fd = wake_fd
        self._snapshot: dict[str, _Key] = {}
        self._reported: set[str] = set()  # files named by a failing worker's traceback
        self._next_poll = 0.0
        # The watchfiles thread's side: it only touches these.
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._ready = False
        self._failed: BaseException | None = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._announced = False
        self.report_r, self.report_w = os.pipe()
        os.set_blocking(self.report_r, False)
        os.set_blocking(self.report_w, False)  # a worker never waits on the master to report
        self._report_buf = b""

    # -- life --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._snapshot = self._scan()
        self._next_poll = time.monotonic() + self.poll_interval
        for entry in self.extra_files:
            if _is_glob(entry):
                if not glob.glob(entry, recursive=True):
                    self.log.warning("--reload-extra-file %s matches nothing yet", entry)
            elif not os.path.exists(entry):
                self.log.warning("--reload-extra-file %s does not exist; watching for it", entry)
        if self.engine == "watchfiles":
            self._thread = threading.Thread(target=self._watch, args=(self._stop_event,),
                                            name="pronghorn-reloader", daemon=True)
            self._thread.start()
        else:
            self._announce()

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        for fd in (self.report_r, self.report_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.report_r = self.report_w = -1

    def _announce(self) -> None:
        self._announced = True
        what = ", ".join(self.roots)
        if self.extra_files:
            what += " and " + ", ".join(self.extra_files)
        self.log.info("Reloader (%s) watching *.py in %s", self.engine, what)

    # -- what changed ------------------------------------------------------------------------------

    def changed(self) -> list[str]:
        """The watched files that changed (appeared, disappeared) since the last call, sorted; cheap
        to call on every turn of the master's loop (the walk runs at most once a second)."""
        self._read_reports()
        found: set[str] = set()
        if self._thread is not None:
            if self._failed is not None:
                self.log.error("The watchfiles reloader failed (%s); polling instead", self._failed)
                self._thread = None
                self.engine = "poll"
                self._snapshot = self._scan()
                self._announce()
                return []
            if self._ready and not self._announced:
                self._announce()
            with self._lock:
                found |= self._pending
                self._pending.clear()
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + self.poll_interval
            old, new = self._snapshot, self._scan()
            self._snapshot = new
            found.update(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))
        return sorted(found)

    def covers(self, path: str) -> bool:
        """Whether the roots' rules include ``path``: a ``*.py`` file under a root, reached through no
        skipped directory."""
        name = os.path.basename(path)
        if not name.endswith(".py") or name.startswith("."):
            return False
        for root in self.roots:
            if not path.startswith(root + os.sep):
                continue
            directory = root
            for part in path[len(root) + 1:].split(os.sep)[:-1]:
                directory = os.path.join(directory, part)
                if _skipped_dir(part, directory):
                    break
            else:
                return True
        return False

    def _polled(self) -> set[str]:
        """The files stat'ed one by one: extra files (globs expanded now) and reported files, less
        what the watchfiles thread already covers."""
        paths = set(self._reported)
        for entry in self.extra_files:
            if _is_glob(entry):
                paths.update(glob.glob(entry, recursive=True))
            else:
                paths.add(entry)
        if self.engine == "watchfiles":
            paths = {path for path in paths if not self.covers(path)}
        return paths

    def _scan(self) -> dict[str, _Key]:
        snapshot: dict[str, _Key] = {}
        if self.engine == "poll":
            for root in self.roots:
                for path, st in iter_sources(root):
                    snapshot[path] = _key(st)
        for path in self._polled():
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode):
                snapshot[path] = _key(st)
        return snapshot

    def _read_reports(self) -> None:
        """Files named by failing workers: watch those outside the roots, from the stat the worker
        saw (so that a fix made meanwhile still counts as a change)."""
        if self.report_r < 0:
            return
        try:
            while True:
                data = os.read(self.report_r, 65536)
                if not data:
                    break
                self._report_buf += data
        except (BlockingIOError, InterruptedError):
            pass
        *lines, self._report_buf = self._report_buf.split(b"\n")
        for line in lines:
            try:
                mtime, size, ino, path = line.decode("utf-8", "surrogateescape").split(" ", 3)
                key = (int(mtime), int(size), int(ino))
            except ValueError:
                continue
            if path in self._snapshot or path in self._reported or self.covers(path):
                continue
            self.log.info("Reloader: also watching %s", path)
            self._reported.add(path)
            self._snapshot[path] = key

    # -- the watchfiles thread ---------------------------------------------------------------------

    def _watch(self, stop_event: threading.Event) -> None:
        """Runs in the thread: record what changed and poke the master. No logging here."""
        try:
            import watchfiles

            for changes in watchfiles.watch(
                    *self.roots, watch_filter=lambda change, path: self.covers(path),
                    stop_event=stop_event, rust_timeout=1000, yield_on_timeout=True,
                    raise_interrupt=False, ignore_permission_denied=True):
                if stop_event.is_set():
                    return
                poke = not self._ready
                self._ready = True  # the first yield (changes or a timeout): the watches are in place
                if changes:
                    with self._lock:
                        self._pending.update(path for _, path in changes)
                    poke = True
                if poke:
                    self._poke()
        except BaseException as exc:  # noqa: BLE001 - reported by the master's thread
            if not stop_event.is_set():
                self._failed = exc
                self._poke()

    def _poke(self) -> None:
        try:
            os.write(self._wake_fd, b"r")
        except OSError:
            pass


# -- in the worker ---------------------------------------------------------------------------------------

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the pronghorn package


def failure_files(exc: BaseException) -> list[str]:
    """The files a failed import points at: a SyntaxError's file, and every real file in the
    traceback (and the exceptions it chains), less pronghorn's own and the standard library's."""
    files: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SyntaxError) and current.filename:
            files.append(current.filename)
        files.extend(frame.filename for frame in traceback.extract_tb(current.__traceback__))
        current = current.__cause__ or current.__context__
    import sysconfig

    skip = tuple({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib")
                  if (p := sysconfig.get_paths().get(key))}) + (_OWN_DIR + os.sep,)
    result: list[str] = []
    for path in files:
        path = os.path.abspath(path)
        if (path in result or path.startswith(skip)
                or not os.path.isfile(path)):
            continue
        result.append(path)
    return result[:MAX_REPORTED]


def report_failure(fd: int, exc: BaseException) -> None:
    """Tell the master which files to watch so that a fix reloads (one write per file, each shorter
    than PIPE_BUF, so lines from several workers never interleave)."""
    for path in failure_files(exc):
        if "\n" in path:
            continue
        try:
            st = os.stat(path)
            line = f"{st.st_mtime_ns} {st.st_size} {st.st_ino} {path}\n".encode(
                "utf-8", "surrogateescape")
            if len(line) <= 4096:
                os.write(fd, line)
        except OSError:
            return  # the pipe is full or closed: the master watches its roots anyway


def error_app(text: str) -> Callable[..., Any]:
    """The WSGI app a worker runs under --reload when the real one failed to import: a 500 page with
    the traceback (plain text, so nothing in it needs escaping) for every request."""
    body = ("500 Internal Server Error\n\n"
            "The application failed to load. pronghorn --reload serves this page until a change to "
            "a watched file reloads it.\n\n" + text + "\n").encode("utf-8", "replace")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
               ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("500 Internal Server Error", list(headers))
        return [body]

    return application


def serve_failure(fd: int, exc: BaseException, log: logging.Logger) -> Callable[..., Any]:
    """In a worker under --reload whose app failed to import (the traceback is already logged):
    report the files to watch and return the app that shows the traceback."""
    report_failure(fd, exc)
    log.warning("Serving the traceback as a 500 page until a watched file changes")
    # The page starts at the application's code: the frames of pronghorn's loader and importlib
    # that lead to it say nothing (the log has the whole traceback).
    tb = exc.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
    return error_app(text)


def _is_machinery(filename: str) -> bool:
    return (filename.startswith(_OWN_DIR + os.sep) or filename.startswith("<frozen importlib")
            or filename.endswith(os.path.join("importlib", "__init__.py")))

