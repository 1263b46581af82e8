"""The reading pane: the tracking banner, headers, the (sanitised) body and attachments.

The body is shown in a ``QTextBrowser``, which never fetches remote resources; the HTML it gets
is already sanitised by ``core.domain.html_sanitize``. Links open in the user's browser on click.

What the body widget gets is prepared on a worker (``core.mail.display``): no run of characters
without a break opportunity longer than Qt lays out in linear time, and only the first part of a
long body, with a "Show all" link that prepares the rest on a worker too.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget

from core.domain.model import Address, TrackState
from core.mail.display import DisplayBody, break_html_runs, prepare_text
from core.workspace.reading import MessageView
from desktop.attachments import AttachmentsPanel
from desktop.connections import ConnectionsBar
from desktop.icons import STATE_LABELS, state_icon
from desktop.ops import QueryOp
from desktop.workers import Workers

BANNER_STYLES = {
    TrackState.TRACKED: ("#e8f4ec", "#1f7a3f"),
    TrackState.TRACKED_BY_OTHER: ("#e8f4ec", "#1f7a3f"),
    TrackState.PENDING: ("#e9f0fa", "#2f6fbf"),
    TrackState.UNDECIDED: ("#e9f0fa", "#2f6fbf"),
    TrackState.FAILED: ("#fbeaea", "#c62828"),
    TrackState.NEEDS_ATTENTION: ("#fdf3e1", "#a86a00"),
    TrackState.NOT_TRACKED: ("#f3f4f6", "#59606a"),
}


class TrackingBanner(QFrame):
    """Always says whether the message is tracked, regarding what (a link to the CRM record),
    and why."""

    resolve_requested = Signal(str)  # an unresolved address the user wants to resolve

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.enabled_by_user = True
        self.setObjectName("trackingBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.icon = QLabel()
        self.icon.setFixedSize(18, 18)
        self.text = QLabel()
        self.text.setObjectName("trackingBannerText")
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setOpenExternalLinks(False)
        self.text.linkActivated.connect(self._link)
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        self.show_view(None)

    def _link(self, url: str) -> None:
        if url.startswith("resolve:"):
            self.resolve_requested.emit(url.removeprefix("resolve:"))
        else:
            QDesktopServices.openUrl(QUrl(url))

    def show_view(self, view: MessageView | None, state: TrackState | None = None) -> None:
        if view is None or not self.enabled_by_user:
            self.text.setText("")
            self.icon.clear()
            self.setVisible(False)
            return
        state = state or view.track_state
        bg, fg = BANNER_STYLES[state]
        self.setStyleSheet(
            f"#trackingBanner {{ background: {bg}; border: 1px solid {fg}; border-radius: 4px; }}"
            f" #trackingBannerText {{ color: {fg}; }}"
        )
        self.icon.setPixmap(state_icon(state).pixmap(18, 18))
        parts = [f"<b>{html.escape(STATE_LABELS[state])}</b>"]
        if view.regarding is not None:
            name = html.escape(view.regarding.name or view.regarding.entity)
            kind = html.escape(view.regarding.entity)
            if view.regarding_url:
                name = f'<a href="{html.escape(view.regarding_url)}">{name}</a>'
            parts.append(f"Regarding {name} ({kind})")
        if view.reason is not None and state != TrackState.PENDING:
            parts.append(html.escape(view.reason.text))
        if view.activity_url and state in (TrackState.TRACKED, TrackState.TRACKED_BY_OTHER):
            parts.append(f'<a href="{html.escape(view.activity_url)}">View in CRM</a>')
        if view.unresolved:
            names = ", ".join(
                f'<span style="color:#c62828">{html.escape(a.display())}</span> '
                f'<a href="resolve:{html.escape(a.email)}">resolve…</a>'
                for a in view.unresolved[:SHOWN_ADDRESSES]
            )
            more = len(view.unresolved) - SHOWN_ADDRESSES
            names += f" and {more:,} more" if more > 0 else ""
            parts.append(f'<span style="color:#c62828">Unresolved:</span> {names}')
        self.text.setText(" · ".join(parts))
        self.setVisible(True)

    def show_conversation(self, text: str, state: TrackState, icon: QIcon) -> None:
        """A conversation row is selected: which of its mails are tracked, in the words core
        chose (``core.domain.conversations.banner_text``), coloured as ``state``."""
        if not self.enabled_by_user:
            return
        bg, fg = BANNER_STYLES[state]
        self.setStyleSheet(
            f"#trackingBanner {{ background: {bg}; border: 1px solid {fg}; border-radius: 4px; }}"
            f" #trackingBannerText {{ color: {fg}; }}"
        )
        self.icon.setPixmap(icon.pixmap(18, 18))
        self.text.setText(html.escape(text))
        self.setVisible(True)


#: Addresses a header line or the banner shows: a mail to 10,000 people must not cost the
#: GUI thread seconds of rich-text layout.
SHOWN_ADDRESSES = 50


def address_line(addresses: Sequence[Address]) -> str:
    """``a; b; c`` for at most :data:`SHOWN_ADDRESSES`, then "and N more"."""
    line = "; ".join(a.display() for a in addresses[:SHOWN_ADDRESSES])
    more = len(addresses) - SHOWN_ADDRESSES
    return f"{line} and {more:,} more" if more > 0 else line


def _body_of(view: MessageView) -> DisplayBody:
    """The prepared body of ``view``; a view built elsewhere (no ``display``) is prepared
    here, in linear time."""
    if view.display is not None:
        return view.display
    if view.body_html is not None:
        n = len(view.body_html)
        return DisplayBody("", break_html_runs(view.body_html), n, n)
    return prepare_text(view.body_text, more=False)


class ReadingPane(QWidget):
    """Shows one :class:`~core.workspace.reading.MessageView`. ``workers`` runs "Show all"
    (without, the pane has a one-thread pool of its own)."""

    def __init__(self, parent: QWidget | None = None, workers: Workers | None = None) -> None:
        super().__init__(parent)
        self._workers = workers
        self._serial = 0  # bumped whenever the pane shows something else
        self.setObjectName("readingPane")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.banner = TrackingBanner(self)
        # "Also linked to: …" (filled by desktop.connections.LinkRecords on a worker)
        self.connections = ConnectionsBar(self)
        self.subject = QLabel()
        self.subject.setObjectName("readingSubject")
        self.subject.setAccessibleName("Subject")
        self.subject.setWordWrap(True)
        self.subject.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.subject.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.subject.setFont(font)
        self.headers = QLabel()
        self.headers.setObjectName("readingHeaders")
        self.headers.setAccessibleName("Message headers")
        self.headers.setTextFormat(Qt.TextFormat.RichText)
        self.headers.setWordWrap(True)
        self.headers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice = QLabel()
        self.notice.setObjectName("readingNotice")
        self.notice.setStyleSheet("color: #59606a; font-style: italic;")
        self.more = QLabel()
        self.more.setObjectName("readingMore")
        self.more.setTextFormat(Qt.TextFormat.RichText)
        self.more.setWordWrap(True)
        self.more.setStyleSheet("color: #59606a;")
        self.more.linkActivated.connect(lambda _: self.show_all())
        self.body = QTextBrowser()
        self.body.setObjectName("readingBody")
        self.body.setAccessibleName("Message text")
        self.body.setOpenLinks(False)
        self.body.anchorClicked.connect(self._open_link)
        self.invitation = QLabel()
        self.invitation.setObjectName("readingInvitation")
        self.invitation.setTextFormat(Qt.TextFormat.PlainText)  # the sender's words
        self.invitation.setWordWrap(True)
        self.invitation.setStyleSheet(
            "background: #eef3fb; border: 1px solid #2f6fbf; border-radius: 4px; padding: 4px;"
        )
        self.attachments = AttachmentsPanel(self._pool, self)
        for w in (self.banner, self.subject, self.headers, self.notice, self.invitation, self.more):
            layout.addWidget(w)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.attachments)
        layout.insertWidget(1, self.connections)  # under the banner
        self.view: MessageView | None = None
        self.clear()

    def set_banner_enabled(self, on: bool) -> None:
        """The "show tracking banner" privacy option."""
        self.banner.enabled_by_user = on
        if self.view is not None:
            self.banner.show_view(self.view)
        else:
            self.banner.show_view(None)

    def clear(self, message: str = "Select a message to read it.") -> None:
        self._serial += 1
        self.view = None
        self.more.setVisible(False)
        self.banner.show_view(None)
        self.connections.show_links([])
        self.subject.setText("")
        self.headers.setText("")
        self.notice.setVisible(False)
        self.invitation.setVisible(False)
        self.attachments.show_view(None)
        self.body.setPlainText(message)

    def show_loading(self) -> None:
        self._serial += 1
        self.more.setVisible(False)
        self.body.setPlainText("Loading…")

    def show_error(self, text: str) -> None:
        self.clear(text)

    def show_view(self, view: MessageView, state: TrackState | None = None) -> None:
        self._serial += 1
        self.view = view
        h = view.header
        self.banner.show_view(view, state)
        self.subject.setText(h.subject or "(no subject)")
        rows = []
        if h.sender:
            rows.append(f"<b>From:</b> {html.escape(h.sender.display())}")
        if h.to:
            rows.append("<b>To:</b> " + html.escape(address_line(h.to)))
        if h.cc:
            rows.append("<b>Cc:</b> " + html.escape(address_line(h.cc)))
        if h.date:
            rows.append(f"<b>Date:</b> {h.date.strftime('%A %d %B %Y %H:%M')}")
        self.headers.setText("<br>".join(rows))
        notices = []
        if view.blocked_resources:
            notices.append(
                f"{view.blocked_resources} remote image(s) blocked to protect your privacy."
            )
        if view.parse_errors:
            notices.append(
                "Parts of this message could not be read: " + "; ".join(view.parse_errors[:3])
            )
        self.notice.setText(" ".join(notices))
        self.notice.setVisible(bool(notices))
        self.invitation.setText(view.invitation if view.invitation else "")
        self.invitation.setVisible(bool(view.invitation))
        self._show_body(_body_of(view))
        self.attachments.show_view(view)

    def show_all(self) -> None:
        """Show as much of a long body as the pane can take, prepared on a worker; the result
        is dropped when the pane shows something else by then."""
        view = self.view
        if view is None or view.show_all is None:
            return
        serial = self._serial

        def shown(body: DisplayBody) -> None:
            if serial == self._serial:
                self._show_body(body)

        def failed(exc: BaseException) -> None:
            if serial == self._serial:
                self.more.setText(f"The whole message could not be prepared: {exc}")

        self.more.setText("Preparing the whole message…")
        QueryOp(view.show_all, shown, owner=self).failure(failed).run_in_background(self._pool())

    def _pool(self) -> Workers:
        if self._workers is None:
            self._workers = Workers(self, max_threads=1)
        return self._workers

    def _show_body(self, body: DisplayBody) -> None:
        if body.html is not None:
            self.body.setHtml(body.html)
        else:
            self.body.setPlainText(body.text)
        note = html.escape(body.note())
        if body.more:
            note += ' <a href="show-all">Show all</a>'
        self.more.setText(note)
        self.more.setVisible(body.truncated)

    def _open_link(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
