"""The plain-text part of a CRM-created mail sent from the mailbox."""

from __future__ import annotations

from email import message_from_bytes, policy

from core.domain.model import Address
from core.sync.pending_send import PendingMail, mime_for


def test_plain_text_part_holds_the_words_not_the_style_or_script() -> None:
    html = (
        "<html><head><style>p { color: red }</style><script>track()</script></head>"
        "<body><p>Hello   Jane,</p>\n<p>the quote &amp; terms are attached.</p></body></html>"
    )
    mail = PendingMail("a1", "Quote", (Address("jane@fabrikam.example", "Jane"),), (), (), html)
    msg = message_from_bytes(
        mime_for(mail, Address("alex@contoso.example", "Alex"), "<m@x>"), policy=policy.default
    )
    text = msg.get_body(("plain",)).get_content()
    assert "Hello Jane," in text and "the quote & terms are attached." in text
    assert "color" not in text and "track()" not in text
    assert msg.get_body(("html",)).get_content().strip().startswith("<html>")
