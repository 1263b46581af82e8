"""Plain text as an option (issue 17), in the real window over the demo workspace: the
Options dialog's "Compose in plain text by default" is saved and honoured by new mail; a
reply to plain-text mail is plain, a reply to HTML mail follows the option."""

from __future__ import annotations

from desktop.messages import Column
from desktop.options import OptionsDialog
from desktop.roles import RowIdRole


def _rows_by_format(window) -> tuple[int, int]:
    """A list row whose message is HTML and one whose message is plain text."""
    model, ws = window.message_model, window.workspace
    html = plain = None
    for r in range(min(model.rowCount(), 60)):
        view = ws.load_message(int(model.data(model.index(r, Column.SUBJECT), RowIdRole)))
        if view.body_html is not None and html is None:
            html = r
        if view.body_html is None and plain is None:
            plain = r
    assert html is not None and plain is not None, "the demo has both kinds of mail"
    return html, plain


def _compose(qtbot, window, mode: str, row: int | None = None):
    if row is not None:
        window.select_rows([row])
        rid = int(window.message_model.data(window.message_model.index(row, 0), RowIdRole))
        qtbot.waitUntil(
            lambda: (
                window.mail_view.shown_view() is not None
                and window.mail_view.shown_view().row_id == rid
            ),
            timeout=10_000,
        )
    action = {"new": window.window_actions.new_mail, "reply": window.window_actions.reply}[mode]
    action.trigger()
    compose = window.dialogs.opened["compose"]
    qtbot.addWidget(compose)
    return compose


def _set_option(qtbot, window, on: bool) -> None:
    window.window_actions.options.trigger()
    dialog = window.findChildren(OptionsDialog)[-1]
    qtbot.waitUntil(lambda: dialog.save_button.isEnabled(), timeout=10_000)
    assert dialog.compose_plain.isChecked() is (not on)
    dialog.compose_plain.setChecked(on)
    with qtbot.waitSignal(dialog.saved, timeout=10_000):
        dialog.save_button.click()
    assert window.local_options.compose_plain_text is on


def test_replies_follow_the_original_and_new_mail_the_option(qtbot, window) -> None:
    html, plain = _rows_by_format(window)
    new = _compose(qtbot, window, "new")
    assert not new.editor.plain_text and not new.plain.isChecked()
    new.close()
    to_plain = _compose(qtbot, window, "reply", plain)
    assert to_plain.editor.plain_text and to_plain.plain.isChecked()
    assert to_plain.editor.html() is None
    to_plain.close()
    to_html = _compose(qtbot, window, "reply", html)
    assert not to_html.editor.plain_text
    to_html.close()

    _set_option(qtbot, window, True)
    new = _compose(qtbot, window, "new")
    assert new.editor.plain_text and new.plain.isChecked()
    assert not new.editor.buttons["bold"].isEnabled()  # no formatting in plain text
    new.close()
    to_html = _compose(qtbot, window, "reply", html)
    assert to_html.editor.plain_text
    to_html.close()

    _set_option(qtbot, window, False)  # the dialog shows the saved option, and it goes off
    new = _compose(qtbot, window, "new")
    assert not new.editor.plain_text
    new.close()
