"""Config's annotations are the registry's settings, with the types the registry gives them.

A setting is declared once, in SETTINGS; the annotations on Config are what the type checker sees of
it. Each one's expected type is worked out from the setting: a switch is a bool; otherwise the
converter's return type, a list of it for a repeatable setting, ``| None`` when the default is None.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest

from pronghorn.config import SETTINGS, Config, Hooks, Setting

#: Config's attributes that are not settings.
NOT_SETTINGS = {"app_uri": str, "sources": dict[str, str], "config_file": str | None,
                "hooks": Hooks, "argv": list[str], "config_warnings": list[str],
                "notes": list[str]}


def expected_type(setting: Setting) -> Any:
    if setting.flag_only:
        return bool
    convert = setting.convert
    kind = convert if isinstance(convert, type) else typing.get_type_hints(convert)["return"]
    if setting.multiple:
        return list[kind]  # type: ignore[valid-type]  # a type computed at run time, compared below
    if setting.default is None:
        return kind | None
    return kind


def _spelled(kind: Any) -> str:
    """The annotation as it is written in settings.py."""
    if isinstance(kind, type) and not typing.get_args(kind):
        return kind.__name__
    return str(kind).replace("typing.", "")


def test_one_annotation_per_setting_in_registry_order() -> None:
    names = [name for name in Config.__annotations__ if name not in NOT_SETTINGS]
    expected = [setting.name for setting in SETTINGS]
    assert names == expected, "Config's annotations should read:\n" + "\n".join(
        f"    {setting.name}: {_spelled(expected_type(setting))}" for setting in SETTINGS)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_annotation_is_the_registry_type(setting: Setting) -> None:
    hints = typing.get_type_hints(Config)
    expected = expected_type(setting)
    assert hints.get(setting.name) == expected, \
        f"annotate Config.{setting.name} as: {_spelled(expected)}"


def _conforms(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(k, args[0]) and _conforms(v, args[1])
                                               for k, v in value.items())
    if kind is float:
        return isinstance(value, float)
    if kind is type(None):
        return value is None
    return isinstance(value, kind)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_default_has_the_annotated_type(setting: Setting) -> None:
    assert _conforms(setting.initial(), typing.get_type_hints(Config)[setting.name])


def test_not_settings_are_annotated() -> None:
    hints = typing.get_type_hints(Config)
    assert {name: hints[name] for name in NOT_SETTINGS} == NOT_SETTINGS
    cfg = Config()
    for name, kind in NOT_SETTINGS.items():
        assert _conforms(getattr(cfg, name), kind), name


def test_unknown_names_are_refused() -> None:
    with pytest.raises(TypeError, match="not settings: worker"):
        Config(worker=2)
    with pytest.raises(AttributeError, match="'worker' is not a setting"):
        Config().worker  # type: ignore[attr-defined]  # the mistake this test makes on purpose
