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


# --- drafts (issue 17) -----------------------------------------------------------------------


def test_a_saved_draft_reads_back_with_its_id_and_track_choice() -> None:
    from core.mail.drafts import DRAFT_ID_HEADER, TRACK_HEADER, draft_from_mime

    draft = Draft(
        to=(JANE,),
        bcc=(Address("boss@contoso.example"),),
        subject="Offer",
        body_text="Hello",
        body_html="<p>Hello <b>Jane</b></p>",
        track_refused=True,
        attachments=(DraftAttachment("c.pdf", b"%PDF", "application/pdf"),),
    )
    raw = build_mime(draft, ME, extra_headers={DRAFT_ID_HEADER: "abc123", TRACK_HEADER: "no"})
    back, draft_id = draft_from_mime(raw)
    assert draft_id == "abc123"
    assert (back.to, back.bcc, back.subject) == (draft.to, draft.bcc, "Offer")
    assert back.track_refused and not back.track
    assert back.body_html is not None and "<b>Jane</b>" in back.body_html
    assert [(a.filename, a.content) for a in back.attachments] == [("c.pdf", b"%PDF")]


def test_sent_html_is_sanitised_and_a_forwarded_message_is_a_message_part() -> None:
    from core.mail.drafts import RFC822, sanitized

    original = build_mime(Draft(to=(ME,), subject="Original", body_text="Inner"), JANE)
    draft = sanitized(
        Draft(
            to=(JANE,),
            subject="FW: Original",
            body_html='<p onclick="steal()">Hi<script>alert(1)</script>'
            '<a href="javascript:alert(2)">x</a></p>',
            attachments=(DraftAttachment("Original.eml", original, RFC822),),
        )
    )
    raw = build_mime(draft, ME)
    lowered = raw.lower()
    assert b"<script" not in lowered and b"onclick" not in lowered
    assert b"javascript:" not in lowered
    assert b"Content-Type: message/rfc822" in raw
    (att,) = parse_message(raw).attachments
    assert att.content_type == RFC822 and b"Subject: Original" in att.payload()
