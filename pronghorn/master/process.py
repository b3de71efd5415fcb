"""Process-level chores of the master and its workers: pidfile, daemon, user/group, process titles."""

from __future__ import annotations

import os
import pwd
import stat
import sys
from typing import Any

# What --user and --group name is resolved where the setting is defined; logs.py resolves them too.
from ..config.values import resolve_group as resolve_group, resolve_user as resolve_user


# -- pidfile -----------------------------------------------------------------------------------------

class PidFile:
    """The pidfile holds the master's pid. On USR2 it is renamed to PATH.oldbin so the new master can
    take PATH; it is removed on exit only if it still names this process."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def create(self, pid: int) -> None:
        other = self._read(self.path)
        if other and other != pid and _alive(other):
            raise OSError(f"pidfile {self.path} names a running process ({other})")
        directory = os.path.dirname(self.path)
        temporary = os.path.join(directory, f".{os.path.basename(self.path)}.{pid}.tmp")
        with open(temporary, "w") as handle:
            handle.write(f"{pid}\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, self.path)  # atomic: a reader never sees a half-written pid

    def rename(self, new_path: str) -> None:
        os.replace(self.path, new_path)
        self.path = new_path

    def unlink(self, pid: int) -> None:
        if self._read(self.path) == pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    @staticmethod
    def _read(path: str) -> int | None:
        try:
            with open(path) as handle:
                return int(handle.read().strip() or 0) or None
        except (OSError, ValueError):
            return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- daemon ------------------------------------------------------------------------------------------

def daemonize(inherit_stdio: bool = False) -> None:
    """Detach from the terminal: fork, new session, fork again, umask 022, stdin to /dev/null, and
    stdout and stderr to /dev/null unless they may stay (see below)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    # Gunicorn's daemon sets 022 here, so a -D server writes its logs, and the app its files, 0644
    # whichever shell, cron job or init script launched it. A USR2 re-exec does not come here: it
    # inherits this from the old master.
    os.umask(0o022)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != 0 and _may_keep(fd, inherit_stdio):
            continue
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _may_keep(fd: int, inherit_stdio: bool) -> bool:
    """Whether a daemon keeps stdout or stderr as its launcher left it. A file the operator chose
    (`pronghorn -D app 2>>error.log`) stays. With -R (enable_stdio_inheritance) anything but a
    terminal stays too, as in Gunicorn: a pipe to a log collector keeps the output. Without it a
    pipe or socket goes, since a daemon that kept the launcher's pipe would hang a shell pipeline
    or an ssh session until it exits. A terminal always goes: the daemon has left it."""
    if _is_regular_file(fd):
        return True
    return inherit_stdio and not os.isatty(fd)


def has_controlling_terminal() -> bool:
    """Whether this process has a controlling terminal (runs in a terminal window)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _is_regular_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


# -- user and group ----------------------------------------------------------------------------------

def drop_privileges(user: tuple[int, str | None] | None, gid: int | None,
                    initgroups: bool = False) -> None:
    """Become ``user``/``gid``: supplementary groups first, then the gid, then the uid (the order that
    still has the right to do each step), and verify the result, including that root cannot be
    regained. The supplementary groups are the gid alone, or with ``initgroups`` (--initgroups)
    every group the user is a member of, plus the gid."""
    if user is None and gid is None:
        return
    uid = user[0] if user else os.getuid()
    name = user[1] if user else None
    if gid is None:
        gid = pwd.getpwuid(uid).pw_gid if user else os.getgid()
    if os.getuid() == uid and os.getgid() == gid and os.geteuid() == uid:
        return
    if initgroups and name is not None:
        os.initgroups(name, gid)
    else:
        # Not the master's groups (root's, often): a worker keeps no group it was not given.
        os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid or os.getegid() != gid:
        raise OSError(f"could not switch to uid {uid} gid {gid}")
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise OSError("dropped privileges but could become root again")


# -- process titles ----------------------------------------------------------------------------------

def set_proctitle(title: str) -> None:
    """"pronghorn: master [name]" in ps; setproctitle when installed, else the kernel's comm name
    (15 characters, shown by `ps -o comm` and top)."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        pass
    else:
        setproctitle(title)
        return
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{os.getpid()}/comm", "w") as handle:
                handle.write(title.replace("pronghorn: ", "pronghorn-")[:15])
        except OSError:
            pass


def parse_env(pairs: list[str]) -> dict[str, str]:
    """-e KEY=VALUE pairs → dict; raises ValueError naming a pair without '='."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"-e/--env: {pair!r} is not KEY=VALUE")
        result[key] = value
    return result
