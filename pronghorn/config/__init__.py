"""The one registry of settings: the command line, the config file, the environment
(PRONGHORN_CMD_ARGS / GUNICORN_CMD_ARGS, WEB_CONCURRENCY, PORT), --print-config and docs/settings.md
(``python -m pronghorn.config.docs``) all come from it."""

from .file import KNOWN_GUNICORN_SETTINGS, ConfigError, ConfigFile, find_config_file, load
from .gunicorn_config import GunicornConfig
from .hooks import HOOK_SPECS, Hooks
from .settings import SETTINGS, Config, Setting, parse_bind

__all__ = ["HOOK_SPECS", "KNOWN_GUNICORN_SETTINGS", "SETTINGS", "Config", "ConfigError",
           "ConfigFile", "GunicornConfig", "Hooks", "Setting", "find_config_file", "load", "parse_bind"]
