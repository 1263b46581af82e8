"""The profiles of a user: one config file + one data directory per mail/CRM account pair.

Where they live: under ``$TRACKBOX_HOME`` when set (tests, scripts, portable installs)::

    $TRACKBOX_HOME/profiles/<name>/profile.toml
    $TRACKBOX_HOME/profiles/<name>/data/{store.sqlite, logs/}
    $TRACKBOX_HOME/default-profile

otherwise the config goes to platformdirs' user *config* dir and the data to its user *data*
dir (``~/.config/trackbox/profiles/<name>.toml``, ``~/.local/share/trackbox/profiles/<name>/``
on Linux).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from core.config.profile_checks import validate
from core.config.profile_config import Profile, ProfileConfig
from core.config.profile_errors import ProfileConfigError, ProfileExists, ProfileNotFound
from core.config.profile_file import dumps, load_config
from core.private_files import make_private_dir

APP = "trackbox"
CONFIG_NAME = "profile.toml"
DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _write_atomically(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        make_private_dir(path.parent)  # 0700: the profiles of this user only
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Profiles:
    """The profiles of this user (or of ``home``; default ``$TRACKBOX_HOME``)."""

    def __init__(self, home: Path | str | None = None) -> None:
        if home is None and os.environ.get("TRACKBOX_HOME"):
            home = os.environ["TRACKBOX_HOME"]
        self.home = Path(home) if home is not None else None

    # Layout -------------------------------------------------------------------------------

    @property
    def config_root(self) -> Path:
        if self.home is not None:
            return self.home / "profiles"
        return Path(platformdirs.user_config_dir(APP)) / "profiles"

    @property
    def data_root(self) -> Path:
        if self.home is not None:
            return self.home / "profiles"
        return Path(platformdirs.user_data_dir(APP)) / "profiles"

    def config_path(self, name: str) -> Path:
        if self.home is not None:
            return self.config_root / name / CONFIG_NAME
        return self.config_root / f"{name}.toml"

    def data_dir(self, name: str) -> Path:
        if self.home is not None:
            return self.data_root / name / "data"
        return self.data_root / name

    @property
    def _default_file(self) -> Path:
        return self.config_root.parent / "default-profile"

    # Operations ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        root = self.config_root
        if not root.is_dir():
            return []
        if self.home is not None:
            found = [p.name for p in root.iterdir() if (p / CONFIG_NAME).is_file()]
        else:
            found = [p.stem for p in root.glob("*.toml")]
        return sorted(n for n in found if _NAME.match(n))

    def default_name(self) -> str:
        """The profile used without ``--profile``: the one set as default, else
        ``default``, else the only profile there is."""
        try:
            chosen = self._default_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            chosen = ""
        names = self.names()
        if chosen and chosen in names:
            return chosen
        if DEFAULT_PROFILE not in names and len(names) == 1:
            return names[0]
        return DEFAULT_PROFILE

    def set_default(self, name: str) -> None:
        self._require(name)
        _write_atomically(self._default_file, name + "\n")

    def load(self, name: str | None = None) -> Profile:
        name = name or self.default_name()
        self._check_name(name)
        path = self.config_path(name)
        if not path.is_file():
            raise ProfileNotFound(name, self.names())
        return Profile(name, path, self.data_dir(name), load_config(path))

    def create(self, name: str, config: ProfileConfig | Mapping[str, Any]) -> Profile:
        self._check_name(name)
        if self.config_path(name).exists():
            raise ProfileExists(name)
        return self.save(name, config)

    def save(self, name: str, config: ProfileConfig | Mapping[str, Any]) -> Profile:
        """Write (validated) config for ``name``, creating its data directory."""
        self._check_name(name)
        path = self.config_path(name)
        if not isinstance(config, ProfileConfig):
            config = validate(config, path)
        else:
            config = validate(config.to_dict(), path)
        _write_atomically(path, dumps(config))
        data_dir = self.data_dir(name)
        # Mail, the CRM's data and logs live here: this user's only (0700), even if an
        # older version made it readable by others.
        make_private_dir(data_dir / "logs")
        make_private_dir(data_dir)
        return Profile(name, path, data_dir, config)

    def delete(self, name: str, *, keep_data: bool = False) -> None:
        self._require(name)
        path = self.config_path(name)
        path.unlink()
        if self.home is not None and not keep_data:
            shutil.rmtree(path.parent, ignore_errors=True)
        elif not keep_data:
            shutil.rmtree(self.data_dir(name), ignore_errors=True)

    def _require(self, name: str) -> None:
        self._check_name(name)
        if not self.config_path(name).is_file():
            raise ProfileNotFound(name, self.names())

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ProfileConfigError(
                "<profile name>",
                "name",
                name,
                "Profile names are 1-64 letters, digits, '.', '_' or '-', not starting "
                "with a dot or dash.",
            )


__all__ = ["APP", "CONFIG_NAME", "DEFAULT_PROFILE", "Profiles"]
