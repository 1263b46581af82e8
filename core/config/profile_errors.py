"""The errors of profiles: one root, so a caller can refuse any bad profile in one place."""

from __future__ import annotations

from pathlib import Path


class ProfileError(Exception):
    """Root of the profile errors."""


class ProfileNotFound(ProfileError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name, known)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"No profile named {self.name!r} (known profiles: {known})"


class ProfileExists(ProfileError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"A profile named {self.name!r} already exists"


class ProfileConfigError(ProfileError):
    """A config file (or a value given for one) is malformed. ``key``/``value`` are None for
    a file that is not valid TOML at all."""

    def __init__(self, path: Path | str, key: str | None, value: object, expected: str) -> None:
        super().__init__(str(path), key, value, expected)
        self.path = str(path)
        self.key = key
        self.value = value
        self.expected = expected

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.path}: {self.expected}"
        return f"{self.path}: key {self.key!r} has value {self.value!r}. {self.expected}"


__all__ = ["ProfileConfigError", "ProfileError", "ProfileExists", "ProfileNotFound"]
