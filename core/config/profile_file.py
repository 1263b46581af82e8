"""A profile's config file: TOML, read with ``tomllib`` and validated; written here because the
standard library has no TOML writer."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

from core.config.profile_checks import validate
from core.config.profile_config import DAV_KEYS, SIGN_IN_KEYS, ProfileConfig
from core.config.profile_errors import ProfileConfigError


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a profile file")


def dumps(config: ProfileConfig) -> str:
    """The config file's text. Sign-in and DAV keys at their defaults are left out, so a
    profile that does not use them reads as it did before they existed."""
    data = config.to_dict()
    options = data.pop("options")
    defaults = {f.name: f.default for f in dataclasses.fields(ProfileConfig)}
    for key in (*SIGN_IN_KEYS, *DAV_KEYS):
        if data[key] == defaults[key]:
            del data[key]
    if not data["extra_mailboxes"]:
        del data["extra_mailboxes"]  # most profiles have none: their files read as before
    lines = ["# Trackbox profile. Passwords are kept in the system keyring, never here."]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    if options:
        lines += ["", "[options]"]
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"


def load_config(path: Path) -> ProfileConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileConfigError(path, None, None, f"Not UTF-8 text: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileConfigError(path, None, None, f"Not valid TOML: {exc}") from None
    return validate(data, path)


__all__ = ["dumps", "load_config"]
