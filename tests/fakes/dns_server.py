"""A tiny authoritative DNS server on loopback UDP, for exchangelib's autodiscover.

exchangelib resolves names itself with dnspython before it tries an autodiscover URL (an ``A``
query per host) and looks up ``_autodiscover._tcp.<domain>`` ``SRV`` records; it never asks
``/etc/hosts``. Pointed at this server (``Autodiscovery.DNS_RESOLVER_KWARGS`` /
``DNS_RESOLVER_ATTRS``), a test decides what the world looks like, gets answers in
milliseconds whatever the machine's network, and can see what was asked (:attr:`queries`).
Names not in the zone are ``NXDOMAIN``; a name with records of another type answers with no
records (NOERROR), as a real server does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class FakeDnsServer:
    """``add("localhost", "A", "127.0.0.1")``; :meth:`start` binds 127.0.0.1 on a free port."""

    def __init__(self) -> None:
        self.records: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[str]] = {}
        self.queries: list[tuple[str, str]] = []  # (name without the root dot, type)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, name: str, rdtype: str, *values: str) -> None:
        key = (dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
        with self._lock:
            self.records.setdefault(key, []).extend(values)

    def start(self) -> FakeDnsServer:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            try:  # wake the reader with an empty datagram, then close
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"", sock.getsockname())
            finally:
                if self._thread is not None:
                    self._thread.join(timeout=5)
                sock.close()

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def asked(self, rdtype: str) -> list[str]:
        """Names queried with ``rdtype``, in order."""
        return [n for n, t in self.queries if t == rdtype]

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while self._sock is not None:
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                return
            if not data:
                continue
            try:
                sock.sendto(self.answer(data), peer)
            except (dns.exception.DNSException, OSError):
                continue  # garbage in: no answer, as a real server would drop it

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        for q in query.question:
            with self._lock:
                self.queries.append(
                    (q.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(q.rdtype))
                )
                values = self.records.get((q.name, q.rdtype))
                known = any(name == q.name for name, _ in self.records)
            if values:
                reply.answer.append(_rrset(q.name, q.rdtype, values))
            elif not known:
                reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply.to_wire()


def _rrset(
    name: dns.name.Name, rdtype: dns.rdatatype.RdataType, values: Iterable[str]
) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(name, 60, dns.rdataclass.IN, rdtype, list(values))
