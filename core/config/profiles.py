"""Profiles: one config file (TOML) + one data directory per mail/CRM account pair.

The one import for callers; each name lives in the module named for what it holds:
``profile_config`` (the keys and their defaults), ``profile_errors``, ``profile_checks``
(validation), ``profile_file`` (the TOML file), ``profile_store`` (where profiles live) and
``profile_edits`` (changing a saved profile's connection).
"""

from __future__ import annotations

from core.config.mail_urls import graph_options, graph_url, is_graph
from core.config.profile_checks import (
    CRM_SCHEMES,
    GRAPH_SIGN_IN,
    MAIL_SCHEMES,
    SMTP_SCHEMES,
    connection_problems,
    validate,
)
from core.config.profile_config import (
    ADDRESS_BOOK_ENTITIES,
    AUTH_KINDS,
    CONNECTION_KEYS,
    DAV_KEYS,
    DEFAULT_AUTHORITY,
    DEFAULT_CLIENT_ID,
    DEFAULT_DISCOVERY_URL,
    INSECURE_SCHEMES,
    OAUTH_KINDS,
    SIGN_IN_KEYS,
    Profile,
    ProfileConfig,
    account_name,
    insecure_urls,
    mail_scheme,
    needs_mail_password,
)
from core.config.profile_edits import save_connection, with_connection, with_sign_in
from core.config.profile_errors import (
    ProfileConfigError,
    ProfileError,
    ProfileExists,
    ProfileNotFound,
)
from core.config.profile_file import dumps, load_config
from core.config.profile_store import APP, CONFIG_NAME, DEFAULT_PROFILE, Profiles

__all__ = [
    "ADDRESS_BOOK_ENTITIES",
    "APP",
    "AUTH_KINDS",
    "CONFIG_NAME",
    "CONNECTION_KEYS",
    "DAV_KEYS",
    "CRM_SCHEMES",
    "DEFAULT_AUTHORITY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_DISCOVERY_URL",
    "DEFAULT_PROFILE",
    "GRAPH_SIGN_IN",
    "INSECURE_SCHEMES",
    "MAIL_SCHEMES",
    "OAUTH_KINDS",
    "Profile",
    "ProfileConfig",
    "ProfileConfigError",
    "ProfileError",
    "ProfileExists",
    "ProfileNotFound",
    "Profiles",
    "SIGN_IN_KEYS",
    "SMTP_SCHEMES",
    "account_name",
    "connection_problems",
    "dumps",
    "graph_options",
    "graph_url",
    "insecure_urls",
    "is_graph",
    "load_config",
    "mail_scheme",
    "needs_mail_password",
    "save_connection",
    "validate",
    "with_connection",
    "with_sign_in",
]
