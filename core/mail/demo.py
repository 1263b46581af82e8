"""The demo mailbox: a deterministic, realistic Maildir for ``trackbox demo``, tests and benches.

Built from :mod:`core.domain.demo_data` so the demo CRM knows the senders. What it contains,
and why:

- threads with Outlook ``Thread-Index`` (MS-OXOMSG 2.2.1.3: 22-byte header = 0x01-led FILETIME
  high bytes + GUID, then one 5-byte child block per reply) and In-Reply-To/References chains,
  some of them only with RFC 5322 threading (non-Outlook senders) — correlation by thread;
- replies carrying tracking tokens (``CRM:0001023``) in the subject — correlation by token;
- mail from CRM contacts, leads and accounts; internal mail among colleagues; unknown senders
  and newsletters (never tracked by sender rules); the address a lead and a contact share;
- HTML mail with a remote image and a ``<script>`` tag (the viewer must neutralise both);
- a few large attachments (total size stays well under 30 MB), non-ASCII text, RFC 2047 subjects
  in UTF-8 and ISO-8859-1, RFC 2231 file names, and a few malformed messages.

Dates lie in the six months before an anchor, the demo's "now": ``trackbox demo`` anchors a new
demo on the day it is created (:mod:`desktop.demo`), so its newest mail is recent whatever the
date. Tests and benches leave it at :data:`ANCHOR`. The same seed and anchor give the same bytes:
every random choice is an offset from the anchor, never a reading of the clock.
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

from core.domain import demo_data as dd
from core.domain.conversation_index import ConversationIndex
from core.mail.maildir import deliver

#: The default "now" of the demo mailbox, and the one of demos made before anchors were
#: chosen at creation (they have no record of theirs).
ANCHOR = datetime(2026, 10, 30, 17, 0, tzinfo=UTC)
FOLDERS = (
    "Sent Items",
    "Drafts",
    "Outbox",
    "Deleted Items",
    "Junk",
    "Archive",
    "Inbox/Projects",
    "Inbox/Projects/Fabrikam",
)
_MARKER = ".trackbox-demo"
# English month names whatever the locale (Qt sets the C library's locale from the user's).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def create_demo_mailbox(
    root: Path, *, messages: int = 2000, seed: int = 7, anchor: datetime | None = None
) -> Path:
    """Write the demo Maildir at ``root`` unless one is already there; returns ``root``.

    ``anchor`` is the demo's "now" (default :data:`ANCHOR`): no mail is dated after it. Written
    to a sibling temporary directory and renamed into place, so an interrupted run never
    leaves half a mailbox that later runs would take as complete.
    """
    root = Path(root)
    anchor = ANCHOR if anchor is None else as_utc(anchor)
    if (root / "cur").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    gen = _Generator(random.Random(seed), seed, anchor)
    dirs = {"Inbox": tmp}
    for f in FOLDERS:
        d = tmp / ("." + f.replace("/", "."))
        dirs[f] = d
    for d in dirs.values():
        for sub in ("cur", "new", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if d != tmp:
            (d / "maildirfolder").touch()
    for i, m in enumerate(gen.messages(messages)):
        key = f"{int(m.date.timestamp())}.M{i:06d}P{seed}.demo"
        deliver(dirs[m.folder], key, m.data, "S" if m.read else "")
    (tmp / _MARKER).write_text(
        f"seed={seed} messages={messages} anchor={anchor.isoformat()}\n", "utf-8"
    )
    os.rename(tmp, root)
    return root


def as_utc(when: datetime) -> datetime:
    """``when`` in UTC; a naive time is taken as UTC (an anchor is a point in time, and the
    demo must not depend on the machine's time zone)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --- content ----------------------------------------------------------------------------------


@dataclass
class _Msg:
    folder: str
    date: datetime
    data: bytes
    read: bool = True


@dataclass
class _Person:
    name: str
    email: str
    outlook: bool = True  # Outlook sets Thread-Index; others only RFC 5322 threading
    lang: str = "en"
    org: str = ""


@dataclass
class _Thread:
    topic: str
    them: _Person
    folder: str
    token: str | None
    cc: list[_Person] = field(default_factory=list)


_TOPICS = [
    "Quote for {n} licences",
    "Renewal of support contract",
    "Invoice {n} – question",
    "Meeting next week",
    "Onboarding plan",
    "Pilot results",
    "Price list {y}",
    "Delivery schedule",
    "Contract draft v{n}",
    "Security questionnaire",
    "Training dates",
    "Escalation: outage on {d}",
    "Upgrade to premium plan",
    "Purchase order {n}",
    "Workshop agenda",
    "Feedback on the proposal",
]
_TOPICS_DE = [
    "Angebot für {n} Lizenzen – Rückfrage",
    "Rechnung {n}: Prüfung",
    "Schulungstermine",
    "Änderung der Lieferadresse",
]
_TOPICS_FR = ["Devis n° {n} – précisions", "Réunion de suivi", "Bon de commande {n}"]
_TOPICS_ES = ["Reunión de seguimiento", "Presupuesto {n} – revisión"]
_INTERNAL = [
    "Pipeline review",
    "Forecast Q{q}",
    "Team lunch",
    "Travel approval",
    "Handover: {c}",
    "Customer visit {c}",
    "Deal desk: discount for {c}",
    "Weekly sales meeting",
]
_LINES = [
    "Thanks for getting back to me so quickly.",
    "Please find the details below.",
    "Could you confirm the figures before Friday?",
    "I have attached the latest version for your review.",
    "Let me know if anything is unclear.",
    "We discussed this internally and would like to go ahead.",
    "Our finance team needs the PO number on the invoice.",
    "Can we schedule a call on Tuesday or Wednesday afternoon?",
    "The pilot went well, with two minor issues we have logged.",
    "I will be out of office next week; Priya can help in the meantime.",
]
_LINES_DE = [
    "Vielen Dank für Ihre schnelle Rückmeldung.",
    "Anbei die überarbeitete Fassung.",
    "Können Sie die Zahlen bis Freitag bestätigen?",
    "Mit freundlichen Grüßen",
]
_LINES_FR = [
    "Merci pour votre retour rapide.",
    "Vous trouverez ci-joint le devis révisé.",
    "Pouvez-vous confirmer avant vendredi ?",
    "Bien cordialement",
]
_JUNK = [
    "You have WON a prize!!!",
    "Cheap watches – 90% off",
    "Re: your account is suspended",
    "Increase your sales 300% today",
    "Unpaid invoice #88231",
]
_JUNK_FROM = [
    "promo@deals-4u.example",
    "security@bank-verify.example",
    "winner@lottery-intl.example",
    "info@seo-boost.example",
]


class _Generator:
    """Makes the message stream. One ``random.Random`` drives every choice: same seed, same
    mailbox."""

    def __init__(self, rng: random.Random, seed: int, anchor: datetime) -> None:
        self.rng = rng
        self.seed = seed
        self.anchor = anchor
        self.serial = 0
        self.token_no = 1000
        self.me = _Person(dd.ME.full_name, dd.ME.email, True, "en", dd.ORGANISATION_NAME)
        self.colleagues = [
            _Person(u.full_name, u.email, True, "en", dd.ORGANISATION_NAME) for u in dd.COLLEAGUES
        ]
        lang = {"litware.example": "de", "tailspin.example": "fr", "wingtip.example": "es"}
        self.contacts = [
            _Person(
                c.full_name,
                c.email,
                not c.email.endswith("litware.example"),
                lang.get(c.email.split("@")[1], "en"),
                c.account,
            )
            for c in dd.CONTACTS
        ]
        self.leads = [_Person(x.full_name, x.email, False, "en", x.company) for x in dd.LEADS]
        self.accounts = [_Person(a.name, a.email, True, "en", a.name) for a in dd.ACCOUNTS]
        self.unknown = [_Person(n, e, False) for n, e in dd.UNKNOWN_SENDERS]
        self.big_left = 3  # large attachments in the whole mailbox

    # -- top level --

    def messages(self, count: int) -> Iterator[_Msg]:
        made = 0
        specials = list(self._specials())
        every = max(1, count // (len(specials) + 1))
        next_special = every
        while made < count:
            if specials and made >= next_special:
                next_special += every
                made += 1
                yield specials.pop(0)
                continue
            kind = self.rng.random()
            if kind < 0.62:
                batch = self._thread(self._external_thread())
            elif kind < 0.80:
                batch = self._thread(self._internal_thread())
            elif kind < 0.90:
                batch = [self._newsletter()]
            elif kind < 0.95:
                batch = [self._junk()]
            else:
                batch = [self._unknown_mail()]
            for m in batch[: count - made]:
                made += 1
                yield m

    # -- threads --

    def _external_thread(self) -> _Thread:
        r = self.rng.random()
        them = self.rng.choice(
            self.contacts if r < 0.6 else self.leads if r < 0.8 else self.accounts
        )
        topics = {"de": _TOPICS_DE, "fr": _TOPICS_FR, "es": _TOPICS_ES}.get(them.lang, _TOPICS)
        if them.lang != "en" and self.rng.random() < 0.4:
            topics = _TOPICS
        topic = self._fill(self.rng.choice(topics), them)
        folder = "Inbox"
        if them.email.endswith("fabrikam.example") and self.rng.random() < 0.5:
            folder = "Inbox/Projects/Fabrikam"
        elif self.rng.random() < 0.1:
            folder = "Inbox/Projects"
        token = None
        if self.rng.random() < 0.35:
            self.token_no += 1
            token = f"CRM:{self.token_no:07d}"
        cc = [self.rng.choice(self.colleagues)] if self.rng.random() < 0.2 else []
        return _Thread(topic, them, folder, token, cc)

    def _internal_thread(self) -> _Thread:
        them = self.rng.choice(self.colleagues)
        topic = self._fill(self.rng.choice(_INTERNAL), them)
        others = [c for c in self.colleagues if c is not them]
        cc = self.rng.sample(others, k=self.rng.randrange(len(others) + 1))
        return _Thread(topic, them, "Inbox", None, cc)

    def _thread(self, t: _Thread) -> list[_Msg]:
        n = self.rng.choices([1, 2, 3, 4, 5, 6], weights=[25, 30, 20, 12, 8, 5])[0]
        start = self._date()
        guid = uuid.UUID(int=self.rng.getrandbits(128))
        index = ConversationIndex.new(start, guid)
        out: list[_Msg] = []
        ids: list[str] = []
        when = start
        they_start = self.rng.random() < 0.6
        for i in range(n):
            from_me = (i % 2 == 1) if they_start else (i % 2 == 0)
            sender, rcpt = (self.me, t.them) if from_me else (t.them, self.me)
            subject = t.topic if i == 0 else ("RE: " if sender.outlook else "Re: ") + t.topic
            if t.token and (from_me or i > 1):
                # The CRM adds the token when the mail is tracked; replies keep it.
                subject = f"{subject} {t.token}"
            headers = {"Thread-Topic": _subject(t.topic, "utf-8")} if sender.outlook else {}
            if sender.outlook:
                headers["Thread-Index"] = index.header
            mid = self._msgid(sender)
            irt = ids[-1] if ids else None
            refs = ids[-10:]
            body = self._body(sender, rcpt, t)
            attach = None
            if self.rng.random() < 0.06:
                attach = self._attachment(big=self.big_left > 0 and self.rng.random() < 0.3)
            data = self._mime(
                sender, [rcpt], t.cc, subject, when, mid, body, headers, irt, refs, attach
            )
            read = when < self.anchor - timedelta(days=3) or self.rng.random() < 0.5
            folder = "Sent Items" if from_me else t.folder
            old = when < self.anchor - timedelta(days=120)
            if not from_me and old and self.rng.random() < 0.3:
                folder = "Archive"
            if self.rng.random() < 0.02:
                folder = "Deleted Items"
            if from_me and i == n - 1 and self.rng.random() < 0.02:
                folder = "Drafts"
            out.append(_Msg(folder, when, data, read))
            ids.append(mid)
            when += timedelta(minutes=self.rng.randrange(20, 60 * 48))
            if when > self.anchor:  # the rest of this thread has not happened yet
                break
            index = index.child(
                when, random_byte=(self.rng.randrange(16) << 4) | (len(index.raw) // 5 % 16)
            )
        return out

    # -- single messages --

    def _newsletter(self) -> _Msg:
        name, email = dd.UNKNOWN_SENDERS[0] if self.rng.random() < 0.7 else dd.UNKNOWN_SENDERS[2]
        sender = _Person(name, email, False)
        when = self._date()
        week = when.isocalendar()[1]
        html = (
            "<html><head><script>document.location='http://tracker.example/x'</script></head>"
            f'<body><img src="http://tracker.example/open.gif?u={self.serial}" width=1 '
            "height=1><h1>This week in sales tech</h1>"
            f"<p>Issue {week}: {self.rng.choice(_LINES)}</p>"
            '<p><a href="https://daily-digest.example/unsubscribe">Unsubscribe</a></p>'
            "</body></html>"
        )
        text = f"This week in sales tech\n\nIssue {week}\n"
        data = self._mime(
            sender,
            [self.me],
            [],
            f"Sales Digest – week {week}",
            when,
            self._msgid(sender),
            text,
            {
                "List-Unsubscribe": "<https://daily-digest.example/unsubscribe>",
                "Precedence": "bulk",
            },
            html=html,
        )
        return _Msg("Inbox", when, data, self.rng.random() < 0.7)

    def _junk(self) -> _Msg:
        sender = _Person("", self.rng.choice(_JUNK_FROM), False)
        when = self._date()
        html = (
            '<html><body><script>alert(1)</script><img src="http://spam.example/p.png">'
            '<p>Click <a href="http://spam.example/">here</a></p></body></html>'
        )
        data = self._mime(
            sender,
            [self.me],
            [],
            self.rng.choice(_JUNK),
            when,
            self._msgid(sender),
            "Click here",
            {},
            html=html,
        )
        return _Msg("Junk", when, data, False)

    def _unknown_mail(self) -> _Msg:
        sender = self.rng.choice(self.unknown[1:])
        when = self._date()
        data = self._mime(
            sender,
            [self.me],
            [],
            self.rng.choice(
                [
                    "Quick question",
                    "Hello from the conference",
                    "Introduction",
                    "Café next week? ☕",
                ]
            ),
            when,
            self._msgid(sender),
            self._body(sender, self.me, None),
            {},
        )
        return _Msg("Inbox", when, data, self.rng.random() < 0.6)

    def _specials(self) -> Iterator[_Msg]:
        """Hand-written oddities, spread through the mailbox (in this order: each draws a
        Message-ID from the seed's random stream)."""
        yield self._renewal_request()
        yield self._latin1_minutes()
        yield self._proposal_in_outbox()
        yield self._pricing_draft()
        for i, raw in enumerate(_malformed(self.me.email, self.anchor)):
            yield _Msg("Inbox", self.anchor - timedelta(days=40 + i), raw, i % 2 == 0)

    def _renewal_request(self) -> _Msg:
        """An unread request from a contact who is also a lead (two records, one address)."""
        ruth = next(p for p in self.contacts if p.email.startswith("ruth.alvarez"))
        when = self.anchor - timedelta(days=2, hours=3)
        data = self._mime(
            ruth,
            [self.me],
            [],
            "Renewal of our bulk licences",
            when,
            self._msgid(ruth),
            "Hi Alex,\n\nWe are reviewing the bulk licence renewal.\n\nRuth",
            {},
        )
        return _Msg("Inbox", when, data, False)

    def _latin1_minutes(self) -> _Msg:
        """A French contact's mail in ISO-8859-1."""
        when = self.anchor - timedelta(days=9)
        cam = next(p for p in self.contacts if p.lang == "fr")
        data = self._mime(
            cam,
            [self.me],
            [],
            "Résumé de la réunion : prochaines étapes",
            when,
            self._msgid(cam),
            "Voici le résumé de la réunion. À bientôt.",
            {},
            charset="iso-8859-1",
        )
        return _Msg("Inbox", when, data)

    def _proposal_in_outbox(self) -> _Msg:
        """A mail with an attachment waiting in the Outbox."""
        when = self.anchor - timedelta(days=1)
        data = self._mime(
            self.me,
            [self.contacts[0]],
            [],
            "Updated proposal",
            when,
            self._msgid(self.me),
            "Hi Jane,\n\nThe updated proposal is attached.\n\nAlex",
            {},
            attach=("Proposal – Fabrikam.pdf", "application/pdf", b"%PDF-1.4\n" * 200),
        )
        return _Msg("Outbox", when, data, True)

    def _pricing_draft(self) -> _Msg:
        """An unfinished draft to a lead."""
        when = self.anchor - timedelta(days=30)
        data = self._mime(
            self.me,
            [self.leads[1]],
            [],
            "Premium plan pricing",
            when,
            self._msgid(self.me),
            "Hi Kenji,\n\n(draft)",
            {},
        )
        return _Msg("Drafts", when, data, True)

    # -- helpers --

    def _fill(self, topic: str, them: _Person) -> str:
        n = self.rng.randrange(10, 9999)  # drawn in this order: the seed's mailbox depends on it
        day = self.anchor - timedelta(days=self.rng.randrange(180))
        return topic.format(
            n=n,
            y=self.anchor.year + 1,
            d=f"{day.day:02d} {_MONTHS[day.month - 1]}",
            q=self.rng.randrange(1, 5),
            c=self.rng.choice(self.accounts).name,
        )

    def _date(self) -> datetime:
        return self.anchor - timedelta(seconds=self.rng.randrange(180 * 86400))

    def _msgid(self, sender: _Person) -> str:
        self.serial += 1
        domain = sender.email.split("@", 1)[1]
        return f"<{self.seed:x}.{self.serial:06d}.{self.rng.getrandbits(40):010x}@{domain}>"

    def _body(self, sender: _Person, rcpt: _Person, t: _Thread | None) -> str:
        lines = {"de": _LINES_DE, "fr": _LINES_FR}.get(sender.lang, _LINES)
        first = rcpt.name.split()[0] if rcpt.name else "there"
        greet = {"de": f"Hallo {first},", "fr": f"Bonjour {first},"}.get(
            sender.lang, f"Hi {first},"
        )
        paras = [
            " ".join(self.rng.sample(lines, k=min(3, len(lines))))
            for _ in range(self.rng.randrange(1, 4))
        ]
        sig = f"{sender.name}\n{sender.org}" if sender.org else sender.name
        return f"{greet}\n\n" + "\n\n".join(paras) + f"\n\n{sig}\n"

    def _attachment(self, *, big: bool) -> tuple[str, str, bytes]:
        if big:
            self.big_left -= 1
            size = self.rng.randrange(2_000_000, 3_500_000)
            return ("Site survey – photos.zip", "application/zip", self.rng.randbytes(size))
        name, ctype = self.rng.choice(
            [
                ("Quote.pdf", "application/pdf"),
                ("Angebot Übersicht.pdf", "application/pdf"),
                (
                    "Agenda.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ),
                (
                    "figures.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                ("meeting.ics", "text/calendar"),
            ]
        )
        return name, ctype, self.rng.randbytes(self.rng.randrange(2_000, 60_000))

    def _mime(
        self,
        sender: _Person,
        to: list[_Person],
        cc: list[_Person],
        subject: str,
        when: datetime,
        mid: str,
        text: str,
        headers: dict[str, str],
        irt: str | None = None,
        refs: list[str] | None = None,
        attach: tuple[str, str, bytes] | None = None,
        html: str | None = None,
        charset: str = "utf-8",
    ) -> bytes:
        lines = [f"From: {_addr(sender)}", "To: " + ", ".join(_addr(p) for p in to)]
        if cc:
            lines.append("Cc: " + ", ".join(_addr(p) for p in cc))
        lines += [
            f"Subject: {_subject(subject, charset)}",
            f"Date: {format_datetime(when)}",
            f"Message-ID: {mid}",
        ]
        if irt:
            lines.append(f"In-Reply-To: {irt}")
        if refs:
            lines.append("References: " + "\n ".join(refs))
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append("MIME-Version: 1.0")
        body = _text_part(text, charset)
        if html is not None:
            b = f"alt_{self.serial:06d}"
            body = (
                f'Content-Type: multipart/alternative; boundary="{b}"\n\n--{b}\n{body}\n'
                f"--{b}\n" + _text_part(html, "utf-8", "html") + f"\n--{b}--\n"
            )
        if attach is not None:
            name, ctype, payload = attach
            b = f"mix_{self.serial:06d}"
            encoded = base64.encodebytes(payload).decode("ascii")
            body = (
                f'Content-Type: multipart/mixed; boundary="{b}"\n\n--{b}\n{body}\n--{b}\n'
                f'Content-Type: {ctype}; name="{_subject(name, "utf-8")}"\n'
                f"Content-Disposition: attachment; {_rfc2231(name)}\n"
                f"Content-Transfer-Encoding: base64\n\n{encoded}--{b}--\n"
            )
        head = "\n".join(lines) + "\n"
        return head.encode("ascii", "surrogateescape") + body.encode("ascii", "surrogateescape")


def _addr(p: _Person) -> str:
    if not p.name:
        return p.email
    if p.name.isascii():
        name = f'"{p.name}"' if any(c in p.name for c in ",.;") else p.name
    else:
        name = Header(p.name, "utf-8").encode()
    return f"{name} <{p.email}>"


def _subject(s: str, charset: str) -> str:
    if s.isascii():
        return s
    return Header(s, charset).encode(maxlinelen=76)


def _rfc2231(name: str) -> str:
    if name.isascii():
        return f'filename="{name}"'
    from urllib.parse import quote

    return f"filename*=utf-8''{quote(name)}"


def _text_part(text: str, charset: str, sub: str = "plain") -> str:
    if charset == "utf-8" and text.isascii():
        return f'Content-Type: text/{sub}; charset="us-ascii"\n\n{text}'
    data = base64.encodebytes(text.encode(charset)).decode("ascii")
    return (
        f'Content-Type: text/{sub}; charset="{charset}"\n'
        f"Content-Transfer-Encoding: base64\n\n{data}"
    )


def _malformed(me: str, anchor: datetime) -> list[bytes]:
    """Broken messages as found in the wild: each must still list with what can be read."""
    # Five months before the anchor, written as a mail client in Central Europe would.
    cest = (anchor - timedelta(days=151, hours=9)).astimezone(timezone(timedelta(hours=2)))
    date = format_datetime(cest).replace(", 0", ", ", 1)  # "Mon, 1 Jun", not "Mon, 01 Jun"
    return [
        # No Message-ID, no Date, bare LF-less last line.
        f"From: someone@broken.example\nTo: {me}\nSubject: no id, no date\n\nbody".encode(),
        # Unparseable date, broken encoded word, raw 8-bit bytes in a header.
        (
            f"From: =?utf-8?q?Broken=ZZ?= <odd@broken.example>\nTo: {me}\n"
            "Subject: =?utf-8?b?invalid base64!?= and \xe9t\xe9\nDate: yesterday-ish\n"
            "Message-ID: <broken-2@broken.example>\n\nhi\n"
        ).encode("latin-1"),
        # Multipart whose boundary never comes, unknown charset.
        (
            f'From: "Unclosed <list@broken.example>\nTo: {me}\nSubject: missing boundary\n'
            f"Date: {date}\nMessage-ID: <broken-3@broken.example>\n"
            'Content-Type: multipart/mixed; boundary="nowhere"\n\n'
            "--elsewhere\nContent-Type: text/plain; charset=x-unknown-8\n\ntext\n"
        ).encode(),
        # Garbage: not a message at all.
        bytes(range(256)) * 4,
    ]
