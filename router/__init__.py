"""``trackbox-router``: the organisation's server-side synchronisation (issue 19).

The distributed-execution layer lives here (:mod:`router.broker`, :mod:`router.actors`,
:mod:`router.scheduler`, :mod:`router.locks`, :mod:`router.limits`, :mod:`router.state`,
:mod:`router.cli`); what one pass over one mailbox does is injected as a
:class:`router.actors.MailboxProcessor`, so the same actors run in the embedded default (no
Redis) and on any number of machines sharing one Redis. May import ``core``, never ``desktop``.
"""

from __future__ import annotations

#: Prefix of every Redis key the router owns (dramatiq's own keys use its namespace).
KEY_PREFIX = "trackbox-router"
