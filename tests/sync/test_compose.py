"""MIME built for a draft: threading headers, attachments, Bcc kept for the sender only."""

from __future__ import annotations

from core.domain.conversation_index import parse_thread_index
from core.domain.model import Address
from core.mail import parse_message
from core.workspace.compose import Draft, DraftAttachment, build_mime

ME = Address("me@contoso.example", "Me")
JANE = Address("jane@fabrikam.example", "Jane")


def test_a_reply_threads_under_its_parent() -> None:
    first = parse_message(build_mime(Draft(to=(JANE,), subject="Offer"), ME)).header
    assert first.message_id.endswith("@contoso.example>") and first.thread_index
    reply = parse_message(
        build_mime(Draft(to=(JANE,), subject="RE: Offer"), ME, replied=first)
    ).header
    assert reply.in_reply_to == first.message_id
    assert first.message_id in reply.references
    child, parent = parse_thread_index(reply.thread_index), parse_thread_index(first.thread_index)
    assert child is not None and parent is not None and child.is_descendant_of(parent)


def test_body_alternatives_and_attachments() -> None:
    raw = build_mime(
        Draft(
            to=(JANE,),
            cc=(ME,),
            bcc=(Address("boss@contoso.example"),),
            subject="Contract",
            body_text="See attached.",
            body_html="<p>See attached.</p>",
            attachments=(DraftAttachment("c.pdf", b"%PDF", "application/pdf"),),
        ),
        ME,
        message_id="<fixed@contoso.example>",
    )
    parsed = parse_message(raw)
    assert parsed.header.message_id == "<fixed@contoso.example>"
    assert "See attached." in parsed.text and parsed.html and "<p>" in parsed.html
    assert [(a.filename, a.payload()) for a in parsed.attachments] == [("c.pdf", b"%PDF")]
