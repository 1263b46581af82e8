"""Options kept on this computer (not in the CRM): what to synchronise, how often, and how the
window shows tracked mail. The CRM's per-user settings are ``core.domain.crm_settings.UserOptions``.

``LocalOptions`` round-trips through the profile's config file (``core.config.profiles``) when the
workspace has a profile, and through the store's settings snapshot otherwise (the demo).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.config.profiles import ADDRESS_BOOK_ENTITIES, ProfileConfig
from core.domain.crm_settings import AutoCreate, ResolutionPolicy, UserOptions
from core.domain.never_track import (
    InvalidEntry,
    NeverTrack,
    StoppedConversations,
    normalise_entry,
)


@dataclass(frozen=True, slots=True)
class LocalOptions:
    sync_interval_minutes: int = 15
    folders_to_sync: tuple[str, ...] | None = None  # None: every folder
    include_subfolders: bool = True
    show_tracking_banner: bool = True
    warn_before_sending_tracked: bool = True
    colour_tracked: bool = True
    contacts_scope: str = "owned"  # "owned" | "all"
    address_books: tuple[str, ...] = ADDRESS_BOOK_ENTITIES
    #: Seconds a message is shown before it counts as read (Outlook's "mark items as read
    #: when viewed in the Reading Pane: wait N seconds"); 0: at once.
    mark_read_after_seconds: int = 0
    #: Addresses (``alice@x.com``) and domains (``@x.com``, subdomains too) never tracked
    #: automatically (``core.domain.never_track``); stored normalised, without repeats.
    never_track: tuple[str, ...] = ()
    #: Conversations the user stopped tracking, as ``StoppedConversations.stored()`` gives
    #: them. Kept here rather than in the store: like the list, a choice of this user on
    #: this profile, small, and read with the options by the sync cycle.
    stopped_conversations: tuple[str, ...] = ()
    #: New mail starts in plain text (Outlook's "Compose messages in this format").
    compose_plain_text: bool = False

    def __post_init__(self) -> None:
        entries = tuple(dict.fromkeys(normalise_entry(e) for e in self.never_track))
        object.__setattr__(self, "never_track", entries)  # raises InvalidEntry first
        if self.sync_interval_minutes < 1:
            raise ValueError("sync_interval_minutes must be at least 1")
        if not 0 <= self.mark_read_after_seconds <= 3600:
            raise ValueError("mark_read_after_seconds must be between 0 and 3600")
        if self.contacts_scope not in ("owned", "all"):
            raise ValueError("contacts_scope must be 'owned' or 'all'")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["folders_to_sync"] = (
            list(self.folders_to_sync) if self.folders_to_sync is not None else None
        )
        data["address_books"] = list(self.address_books)
        data["never_track"] = list(self.never_track)
        data["stopped_conversations"] = list(self.stopped_conversations)
        return data

    def compose_in_plain_text(self, original_is_html: bool | None = None) -> bool:
        """Whether a compose window starts in plain text: the option for new mail; a reply
        or forward follows the original's format (plain-text mail is answered in plain
        text, as Outlook and Thunderbird do), and the option too (``None``: no original)."""
        if original_is_html is None:
            return self.compose_plain_text
        return self.compose_plain_text or not original_is_html

    def never_track_list(self) -> NeverTrack:
        """The list as the tracking rules read it."""
        return NeverTrack.of(self.never_track)

    def stopped(self) -> StoppedConversations:
        """The stopped conversations as the tracking rules read them."""
        return StoppedConversations.of(self.stopped_conversations)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("folders_to_sync") is not None:
            values["folders_to_sync"] = tuple(values["folders_to_sync"])
        if "address_books" in values:
            values["address_books"] = tuple(values["address_books"])
        if "never_track" in values:
            values["never_track"] = _valid_entries(values["never_track"])
        if "stopped_conversations" in values:
            values["stopped_conversations"] = _strings(values["stopped_conversations"])
        return cls(**values)

    @classmethod
    def from_profile(cls, config: ProfileConfig) -> LocalOptions:
        opts = dict(config.options)
        return cls(
            sync_interval_minutes=config.sync_interval_minutes,
            folders_to_sync=tuple(config.folders) or None,
            include_subfolders=config.include_subfolders,
            show_tracking_banner=bool(opts.get("show_tracking_banner", True)),
            warn_before_sending_tracked=bool(opts.get("warn_before_sending_tracked", True)),
            colour_tracked=bool(opts.get("colour_tracked", True)),
            contacts_scope=config.contacts_scope,
            address_books=tuple(config.address_book_entities),
            mark_read_after_seconds=_seconds(opts.get("mark_read_after_seconds", 0)),
            never_track=_valid_entries(opts.get("never_track", ())),
            stopped_conversations=_strings(opts.get("stopped_conversations", ())),
            compose_plain_text=opts.get("compose_plain_text", False) is True,
        )

    def apply_to(self, config: ProfileConfig) -> ProfileConfig:
        """``config`` with these options written into it (other keys kept)."""
        opts = dict(config.options)
        opts.update(
            show_tracking_banner=self.show_tracking_banner,
            warn_before_sending_tracked=self.warn_before_sending_tracked,
            colour_tracked=self.colour_tracked,
            mark_read_after_seconds=self.mark_read_after_seconds,
            never_track=list(self.never_track),
            stopped_conversations=list(self.stopped_conversations),
            compose_plain_text=self.compose_plain_text,
        )
        return dataclasses.replace(
            config,
            sync_interval_minutes=self.sync_interval_minutes,
            folders=tuple(self.folders_to_sync or ()),
            include_subfolders=self.include_subfolders,
            contacts_scope=self.contacts_scope,
            address_book_entities=tuple(self.address_books),
            options=opts,
        )


def _valid_entries(value: Any) -> tuple[str, ...]:
    """The entries of a stored list that are valid (a hand-edited file may hold others:
    they are dropped, not a reason to refuse the profile)."""
    out: list[str] = []
    for item in _strings(value):
        try:
            out.append(normalise_entry(item))
        except InvalidEntry:
            continue
    return tuple(out)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _seconds(value: Any) -> int:
    try:
        return min(max(int(value), 0), 3600)
    except (TypeError, ValueError):
        return 0


def user_options_from(
    usersettings: Mapping[str, Any] | None, local: Mapping[str, Any] | None, owner_email: str
) -> UserOptions:
    """The user's tracking options: the CRM's usersettings row, Trackbox-only options kept
    locally, and the mailbox's own address (to tell outgoing mail)."""
    local = local or {}
    overrides: dict[str, Any] = {"mailbox_addresses": (owner_email,)}
    if "track_replies_to_tracked" in local:
        overrides["track_replies_to_tracked"] = bool(local["track_replies_to_tracked"])
    if "resolution_policy" in local:
        overrides["resolution_policy"] = ResolutionPolicy(local["resolution_policy"])
    return UserOptions.from_crm(dict(usersettings or {}), **overrides)


def usersettings_data(options: UserOptions) -> dict[str, Any]:
    """The usersettings columns the CRM keeps for these options."""
    create = {AutoCreate.NONE: 0, AutoCreate.CONTACT: 1, AutoCreate.LEAD: 2}
    return {
        "incomingemailfilteringmethod": int(options.incoming_filter),
        "autocreatecontactonpromote": create[options.auto_create],
    }


def local_user_options(options: UserOptions) -> dict[str, Any]:
    return {
        "track_replies_to_tracked": options.track_replies_to_tracked,
        "resolution_policy": options.resolution_policy.value,
    }


def folder_selected(path: str, chosen: tuple[str, ...] | None, include_subfolders: bool) -> bool:
    """Whether ``path`` is synchronised: every folder when nothing is chosen; a chosen folder
    and, by default, its subfolders."""
    if chosen is None or not chosen:
        return True
    for folder in chosen:
        if path == folder or (include_subfolders and path.startswith(folder.rstrip("/") + "/")):
            return True
    return False


__all__ = [
    "LocalOptions",
    "folder_selected",
    "local_user_options",
    "user_options_from",
    "usersettings_data",
]
