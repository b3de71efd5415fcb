"""docs/settings.md, generated from the registry: ``python -m pronghorn.config.docs > docs/settings.md``.

Everything here comes from :data:`settings.SETTINGS`, :data:`hooks.HOOK_SPECS` and
:data:`file.KNOWN_GUNICORN_SETTINGS`, so the page cannot drift from the code (a test compares the
committed file with :func:`render`). The output depends on nothing but the code: no environment
variable, path or clock.
"""

from __future__ import annotations

import sys

from .differences import DIFFERENCES
from .file import _ANY, APP_NAME, KNOWN_GUNICORN_SETTINGS, GunicornSetting
from .hooks import HOOK_SPECS
from .settings import SECTIONS, SETTINGS, Setting

COMMAND = "python -m pronghorn.config.docs > docs/settings.md"

_INTRO = f"""\
# Settings

<!-- Generated from pronghorn/config by `{COMMAND}`; do not edit by hand. -->

Every pronghorn setting, by section. The names are Gunicorn's: a name here is a key in a
Gunicorn-format config file (`-c FILE`) and the flags are Gunicorn's flags, so a Gunicorn command line
and config file work unchanged. Gunicorn settings that pronghorn does not have yet are listed
[near the end](#gunicorn-settings-pronghorn-does-not-support-yet), with what to use instead, and
every deliberate difference from Gunicorn [last](#differences-from-gunicorn), with its reason.

## Where a value comes from

Lowest to highest; each source replaces what the ones before it set:

1. the default, or for a setting with an environment variable below (`WEB_CONCURRENCY`, `PORT`) that
   variable when it is set;
2. the config file: `-c FILE` (also `file:FILE` or `python:MODULE`), else `./pronghorn.conf.py`, else
   `./gunicorn.conf.py`, when present;
3. `GUNICORN_CMD_ARGS`, then `PRONGHORN_CMD_ARGS` over it (both are read when both are set): arguments split
   as a shell would split them and read as the command line reads them
   (`PRONGHORN_CMD_ARGS="--workers 3 --timeout 60"`);
4. the command line.

`HUP` reads all of them again. `pronghorn --print-config APP` prints every value and where it came
from; `pronghorn --check-config APP` loads the configuration and the application and exits 0, or 1
with the error. A value that cannot be used names its setting and source, e.g.
`--workers: 'two' is not an integer` or `gunicorn.conf.py:3: workers: 'two' is not an integer`.
"""


def _default_text(setting: Setting) -> str:
    if setting.name == "umask":
        return f"`{oct(setting.default)}`"
    return f"`{setting.default!r}`"


def _flags_text(setting: Setting) -> str:
    if setting.flag_only:
        return ", ".join(f"`{flag}`" for flag in setting.flags)
    metavar = setting.metavar or "VALUE"
    return ", ".join(f"`{flag} {metavar}`" for flag in setting.flags)


def _env_text(setting: Setting) -> str:
    assert setting.env is not None
    if setting.env_format == "{}":
        return f"`{setting.env}` (when set, it is the default)"
    example = setting.env_format.format(f"${setting.env}")
    return f"`{setting.env}` (when set, the default is `{example}`)"


def _setting_block(setting: Setting) -> list[str]:
    lines = [f"### `{setting.name}`", ""]
    lines.append(f"- Command line: {_flags_text(setting)}")
    if setting.env is not None:
        lines.append(f"- Environment variable: {_env_text(setting)}")
    lines.append(f"- Default: {_default_text(setting)}")
    lines += ["", setting.help, ""]
    return lines


def _inert_text(known: GunicornSetting) -> str:
    if _ANY in known.inert:
        return "any value (ignored)"
    return ", ".join(f"`{value!r}`" for value in known.inert)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The text of docs/settings.md."""
    lines = [_INTRO]
    sections = list(SECTIONS) + sorted({s.section for s in SETTINGS} - set(SECTIONS))
    for section in sections:
        members = [setting for setting in SETTINGS if setting.section == section]
        if not members:
            continue
        lines += [f"## {section}", ""]
        for setting in members:
            lines += _setting_block(setting)
        if section == "Config File":
            lines += [f"### `{APP_NAME}`", "",
                      "- Config file only; the command line's `MODULE[:CALLABLE]` wins over it",
                      "- Default: `None`", "",
                      "The WSGI application, `MODULE[:CALLABLE]`, when the command line does not "
                      "name one (Gunicorn's name).", ""]
    lines += ["## Server Hooks", "",
              "Functions defined in the config file with these names and arguments (Gunicorn's) "
              "are called at those points. As under Gunicorn, a hook that raises in `on_starting` "
              "or `when_ready` stops the master (exit 1), in `post_fork` or `post_worker_init` "
              "fails the worker's boot (the server stops, exit 3, as for an app that fails to "
              "import), and in `pre_request` makes the request a 500 without calling the app. "
              "An exception in any other hook is logged with its traceback and the server goes "
              "on (see [the differences](#differences-from-gunicorn)).", "",
              "| Hook | Arguments |", "|---|---|"]
    lines += [f"| `{name}` | `{', '.join(args)}` |" for name, args in HOOK_SPECS.items()]
    lines += ["", "What the hooks receive has Gunicorn's attributes, with Gunicorn's meaning:", "",
              "- `server` (Gunicorn's Arbiter): `cfg`, `app` (`.cfg`, `.wsgi()`, `.callable`), "
              "`address`, `pid`, `master_pid`, `reexec_pid`, `num_workers` (setting it changes the "
              "worker count, as TTIN/TTOU), `WORKERS` (pid to worker), `LISTENERS`, `timeout`, "
              "`proc_name`, `log`, `pidfile`, `worker_class`; `kill_worker(pid, sig)`, "
              "`reload()`, `reexec()`, `stop(graceful=True)`, `halt(reason=None, exit_status=0)`, "
              "`wakeup()`. The last five are done by the master's loop at its next turn (in a "
              "worker, they signal the master).",
              "- `worker` (one object from `pre_fork`, where its `pid` is `[booting]`, to "
              "`worker_exit`; the master's copy goes to `child_exit`): `age`, `pid`, `ppid`, "
              "`sockets`, `app`, `wsgi`, `cfg`, `log`, `timeout` (half of `--timeout`), `booted`, "
              "`aborted`, `alive`, `nr`, `max_requests`, `tmp` (`notify()`, `last_update()`, "
              "`fileno()`, `close()`), `notify()`.",
              "- `cfg`: `cfg.settings[name].value` / `.get()` / `.set(value)`, `cfg.set(name, "
              "value)`, an attribute per setting and hook, and `env`, `env_orig`, "
              "`worker_class_str`, `worker_class`, `address`, `uid`, `gid`, `is_ssl`, "
              "`ssl_options`, `proc_name`, `sendfile`, `reuse_port`."]
    lines += ["", "## Gunicorn settings pronghorn does not support yet", "",
              "Setting one of these in a config file, or passing its flag, is an error that says "
              "what to use instead, unless the value asks for nothing pronghorn does not already do "
              "(the values in the third column, usually Gunicorn's default): those are accepted, "
              "so a config that spells out Gunicorn's defaults keeps working.", "",
              "| Setting | Gunicorn flags | Accepted values | What to use instead |",
              "|---|---|---|---|"]
    for name, known in sorted(KNOWN_GUNICORN_SETTINGS.items()):
        flags = ", ".join(f"`{flag}`" for flag in known.flags) or "config file only"
        lines.append(f"| `{name}` | {flags} | {_cell(_inert_text(known))} | "
                     f"{_cell(known.advice)} |")
    lines += ["", "## Differences from Gunicorn", "",
              "What a Gunicorn 27 user will find different, on purpose, and why. Anything else "
              "that differs is a bug: please report it.", "",
              "| Where | What differs | Why |", "|---|---|---|"]
    lines += [f"| {topic} | {_cell(what)} | {_cell(why)} |" for topic, what, why in DIFFERENCES]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
