"""The user's configuration: profiles, local options, credentials (keyring), mail URLs, logs."""

from __future__ import annotations
