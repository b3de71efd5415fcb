"""The one registry of settings: the command line (and later the config file, env vars and docs) come
from it."""

from .settings import SETTINGS, Config, Setting, parse_bind

__all__ = ["SETTINGS", "Config", "Setting", "parse_bind"]
