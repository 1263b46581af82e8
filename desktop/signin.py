"""Microsoft / AD FS sign-in in the GUI: the user's part of it run on a worker, and the
main window's banner when a sign-in has expired or was revoked.

- :class:`Interaction` makes the ``Interact`` the core steps call on the worker
  (``core.workspace.signin``): the system browser (MSAL's loopback redirect and PKCE), or a
  device code, which it hands to the GUI thread (``code_shown``) to show and can cancel.
- :class:`SignInBanner` is a non-modal strip over the message list: "Your sign-in to <CRM>
  has expired — Sign in again". One click signs in again on a worker, in the cache the open
  workspace renews from; then the banner hides and ``signed_in`` asks for a sync. The outbox
  is not touched: its operations wait, unattempted, and go on the next sync.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.errors import SIGN_IN_AGAIN, describe, sign_in_expired
from desktop.workers import Workers

if TYPE_CHECKING:
    from core.crm.signin import DeviceFlow, MicrosoftSignIn, SignedIn
    from core.workspace.facade import Workspace

#: How long the browser may take before the sign-in gives up (as ``trackbox account add``).
BROWSER_TIMEOUT = 600.0
BANNER_STYLE = (
    "#signInBanner { background: #fff4e5; border: 1px solid #e0a040; border-radius: 4px; }"
)


class Interaction(QObject):
    """How the user signs in, for one sign-in at a time. ``code_shown(DeviceFlow)`` when a
    device code is ready to show; ``no_browser(url)`` when no browser could be opened.
    Both are emitted on the worker and delivered on the GUI thread."""

    code_shown = Signal(object)
    no_browser = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._flow: DeviceFlow | None = None
        self._cancelled = False

    def interact(
        self, *, device_code: bool, login_hint: str | None = None
    ) -> Callable[[MicrosoftSignIn], SignedIn]:
        """The user's part, to run on a worker."""
        with self._lock:
            self._cancelled = False
            self._flow = None

        def browser(sign_in: MicrosoftSignIn) -> SignedIn:
            return sign_in.sign_in_interactive(
                login_hint or None, timeout=BROWSER_TIMEOUT, on_no_browser=self.no_browser.emit
            )

        def code(sign_in: MicrosoftSignIn) -> SignedIn:
            flow = sign_in.start_device_flow()
            with self._lock:
                self._flow = flow
                if self._cancelled:
                    flow.cancel()
            self.code_shown.emit(flow)
            return sign_in.finish_device_flow(flow)

        return code if device_code else browser

    def cancel(self) -> None:
        """Stop waiting for a device code (the worker's sign-in then fails within a second);
        a browser sign-in cannot be called back, its answer is ignored."""
        with self._lock:
            self._cancelled = True
            if self._flow is not None:
                self._flow.cancel()


def device_code_text(flow: DeviceFlow) -> str:
    """What the page shows for a device code (the address and the code, never a token)."""
    return (
        f"On any device, open {flow.verification_uri} and enter the code {flow.user_code}. "
        "Trackbox continues as soon as you have signed in."
    )


class SignInBanner(QFrame):
    """The expired sign-in strip. ``signed_in`` after a successful sign-in (the window then
    syncs); ``state_changed(bool)`` when it shows or hides."""

    signed_in = Signal()
    state_changed = Signal(bool)
    profile_signed_in = Signal(str)  # signed in for a profile that could not open yet

    def __init__(self, workers: Workers, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signInBanner")
        self.setStyleSheet(BANNER_STYLE)
        self.workers = workers
        self.workspace: Workspace | None = None
        self.profile_name: str | None = None  # signed out before its workspace could open
        self.interaction = Interaction(self)
        self.interaction.code_shown.connect(self._show_code)
        self.interaction.no_browser.connect(self._show_no_browser)
        self.text = QLabel()
        self.text.setObjectName("signInBannerText")
        self.text.setWordWrap(True)
        self.button = QPushButton(SIGN_IN_AGAIN)
        self.button.setObjectName("signInBannerButton")
        self.button.clicked.connect(lambda: self.sign_in())
        self.code = QPushButton("Use a code instead")
        self.code.setObjectName("signInBannerCode")
        self.code.setFlat(True)
        self.code.clicked.connect(lambda: self.sign_in(device_code=True))
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("signInBannerCancel")
        self.cancel.clicked.connect(self.interaction.cancel)
        self.cancel.setVisible(False)
        layout = QHBoxLayout(self)
        layout.addWidget(self.text, 1)
        for w in (self.code, self.cancel, self.button):
            layout.addWidget(w)
        self._busy = False
        self._expired = False
        self._crm = ""
        self.setVisible(False)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def expired(self) -> bool:
        """Whether the strip is up (the window may itself be hidden)."""
        return self._expired

    def set_workspace(self, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self.profile_name = None
        self.hide_banner()

    def show_signed_out(self, profile_name: str, crm: str) -> None:
        """Nobody is signed in, so the profile could not open: the strip signs in for it
        (``profile_signed_in(name)`` then asks to open it again)."""
        if self.workspace is not None:
            return
        self.profile_name = profile_name
        self._crm = crm
        self.text.setText(sign_in_expired(crm))
        if not self._expired:
            self._expired = True
            self.setVisible(True)
            self.state_changed.emit(True)

    def show_expired(self) -> None:
        """Show the strip for the open workspace's CRM (again: the words are current)."""
        ws = self.workspace
        if ws is None:
            return
        if not self._busy:
            self.text.setText(sign_in_expired(ws.crm.base_url))
        if not self._expired:
            self._expired = True
            self.setVisible(True)
            self.state_changed.emit(True)

    def hide_banner(self) -> None:
        if self._expired:
            self._expired = False
            self.setVisible(False)
            self.state_changed.emit(False)

    def sign_in(self, *, device_code: bool = False) -> None:
        """Sign in again on a worker, in the cache the workspace renews its token from."""
        ws = self.workspace
        if self._busy or (ws is None and self.profile_name is None):
            return
        if ws is not None:
            profile = ws.profile
            expected = profile.config.crm_user if profile is not None else ""
            where = ws.crm.base_url
        else:
            expected, where = "", self._crm
        interact = self.interaction.interact(device_code=device_code, login_hint=expected or None)
        name = self.profile_name
        self._set_busy(True)
        self.text.setText(
            "Getting a sign-in code…" if device_code else "Sign in in the browser window…"
        )

        def op() -> SignedIn:
            from core.workspace.signin import sign_in_again

            if ws is not None:
                return sign_in_again(sign_in_of(ws), interact, expected)
            assert name is not None
            sign_in, user = profile_sign_in(name)
            return sign_in_again(sign_in, interact, user)

        def done(_signed: SignedIn) -> None:
            self._set_busy(False)
            if self.workspace is ws:
                self.hide_banner()
                if ws is not None:
                    self.signed_in.emit()
                elif name is not None:
                    self.profile_signed_in.emit(name)

        def failed(exc: BaseException) -> None:
            self._set_busy(False)
            crm = ws.crm.base_url if ws is not None else where
            self.text.setText(f"{describe(exc)} {sign_in_expired(crm)}")

        self.workers.run(op, done, failed, owner=self)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.button.setEnabled(not busy)
        self.code.setEnabled(not busy)
        self.cancel.setVisible(busy)

    def _show_code(self, flow: DeviceFlow) -> None:
        self.text.setText(device_code_text(flow))

    def _show_no_browser(self, url: str) -> None:
        self.text.setText(
            "No browser could be opened. Open this address in a browser on this computer, "
            f"or use a code instead: {url}"
        )


def profile_sign_in(name: str) -> tuple[MicrosoftSignIn, str]:
    """A profile's sign-in and its user, as ``trackbox account sign-in`` makes it."""
    from core.cli.context import load_profile
    from core.cli.sign_in import microsoft_sign_in

    _, profile = load_profile(name)
    config = profile.config
    if not config.uses_oauth:
        raise ValueError(f"profile {name!r} does not sign in with a Microsoft account or AD FS")
    return microsoft_sign_in(config, profile.name), config.crm_user


def signed_out_profile(name: str | None) -> tuple[str, str] | None:
    """(profile, CRM address) when the profile signs in with MSAL and nobody is signed in —
    why it could not open; None otherwise. Reads the profile and the keyring: a worker's."""
    from core.cli.context import load_profile
    from core.cli.sign_in import microsoft_sign_in

    _, profile = load_profile(name)
    config = profile.config
    if not config.uses_oauth or microsoft_sign_in(config, profile.name).account() is not None:
        return None
    return profile.name, config.crm_url


def sign_in_of(ws: Workspace) -> MicrosoftSignIn:
    """The workspace's own sign-in (so that its next request uses the new tokens); a
    profile's fresh one when the CRM client signs in some other way."""
    from core.cli.sign_in import microsoft_sign_in
    from core.workspace.signin import workspace_sign_in

    found = workspace_sign_in(ws.crm.auth)
    if found is not None:
        return found
    profile = ws.profile
    if profile is None or not profile.config.uses_oauth:
        raise ValueError("this profile does not sign in with a Microsoft account or AD FS")
    return microsoft_sign_in(profile.config, profile.name)


__all__ = [
    "BROWSER_TIMEOUT",
    "Interaction",
    "SignInBanner",
    "device_code_text",
    "profile_sign_in",
    "sign_in_of",
    "signed_out_profile",
]
