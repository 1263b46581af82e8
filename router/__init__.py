"""``trackbox-router``: the organisation's server-side synchronisation (issue 19).

The distributed-execution layer lives here (:mod:`router.broker`, :mod:`router.actors`,
:mod:`router.scheduler`, :mod:`router.locks`, :mod:`router.limits`, :mod:`router.state`,
:mod:`router.cli`); what one pass over one mailbox does is injected as a
:class:`router.actors.MailboxProcessor`, so the same actors run in the embedded default (no
Redis) and on any number of machines sharing one Redis. May import ``core``, never ``desktop``.
What a pass does: :mod:`router.processing` (incoming, forward, queues, cases, outgoing), and
what the administrator sees of it in the CRM (mailbox status, alerts): :mod:`router.mailbox_status`.

Where a mailbox's sync state lives (distributed mode). Each machine keeps its own SQLite
state per mailbox under ``state_dir`` (local disk; it need not be shared): a mailbox's jobs go
to whichever worker takes them, so its passes move between machines, and the state a machine
has for it is a *cache*, empty or stale. What must hold whatever the cache says lives in the
CRM, which every worker reaches:

- promotion is idempotent by Message-ID (the outbox asks the CRM for the e-mail before
  promoting), queue items are added only to mail never queued (``router.queues``), cases
  and acknowledgements have ids derived from the e-mail's, and a Pending Send mail the CRM
  already has as Sent is never sent from a stale state (``router.incoming.already_sent``);
  claiming Pending Send mail is atomic in the CRM (``BackgroundSendEmail``);
- a first pass in an empty state takes the mailbox's mail as its baseline *except* mail dated
  after the mailbox's last successful pass (``mailbox.lastsuccessfulsynccompletedon``, written
  by every pass: ``router.mailbox_status``) less a day's margin: that mail is decided again,
  with the same rules, so mail that arrived since the other machine's pass is not lost, mail
  the owner's option left untracked stays untracked, and mail the other machine tracked is
  found, not duplicated (``tests/router/test_state_across_machines.py``).

The cost: a machine decides a mailbox's last day of mail once more the first time it sees the
mailbox (lookups, no writes). A shared ``state_dir`` (NFS) is not needed and not advised: the
organisation's address-book cache in it is written by every worker at once, which SQLite's
locking does not make safe on network file systems.
"""

from __future__ import annotations

#: Prefix of every Redis key the router owns (dramatiq's own keys use its namespace).
KEY_PREFIX = "trackbox-router"
