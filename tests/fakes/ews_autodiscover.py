"""SOAP autodiscover (``/autodiscover/autodiscover.svc``) for the fake Exchange server.

exchangelib asks ``GetUserSettings`` for the user's address with every setting it knows; Exchange
answers the ones it has for that user and lists the rest under ``UserSettingErrors``
(``SettingIsNotAvailable``), which exchangelib ignores. An address without a mailbox gets
``InvalidUser``. Anything else in the request (another action, another operation, an element
this module does not read) raises :class:`NotUnderstood`, which the server turns into a SOAP
fault *and* a test failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from xml.sax.saxutils import escape

from lxml import etree

from tests.fakes.ews_xml import WSA, A, NotUnderstood, S, only_children, q

ACTION = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"
#: What Exchange 2016 CU (build 15.1.2507.6) reports.
SUPPORTED_SCHEMAS = (
    "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, "
    "Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2015, "
    "Exchange2016"
)
_SETTING_NAME = re.compile(r"^[A-Za-z0-9]+$")


def get_user_settings(
    body: bytes, settings_for: Callable[[str], dict[str, str] | None], endpoint: str
) -> bytes:
    """Answer one GetUserSettings request. ``settings_for(address)`` gives the settings Exchange
    has for that mailbox (``None``: no such user); ``endpoint`` is this service's own URL, which
    the request must address (``wsa:To``)."""
    try:
        doc = etree.fromstring(body)
    except etree.XMLSyntaxError as exc:
        raise NotUnderstood(f"unparseable request: {exc}") from exc
    header, soap_body = doc.find(q("s:Header")), doc.find(q("s:Body"))
    if doc.tag != q("s:Envelope") or header is None or soap_body is None:
        raise NotUnderstood("not a SOAP 1.1 envelope with Header and Body")
    only_children(header, {q("a:RequestedServerVersion"), q("wsa:Action"), q("wsa:To")})
    if header.findtext(q("wsa:Action")) != ACTION:
        raise NotUnderstood(f"action {header.findtext(q('wsa:Action'))!r}")
    if (header.findtext(q("wsa:To")) or "").lower() != endpoint.lower():
        raise NotUnderstood(f"wsa:To {header.findtext(q('wsa:To'))!r}, this is {endpoint}")
    msg = soap_body.find(q("a:GetUserSettingsRequestMessage"))
    if msg is None or len(soap_body) != 1:
        raise NotUnderstood(f"body {[c.tag for c in soap_body]}")
    only_children(msg, {q("a:Request")})
    request = msg.find(q("a:Request"))
    if request is None:
        raise NotUnderstood("no Request")
    only_children(request, {q("a:Users"), q("a:RequestedSettings")})
    users = [
        u.findtext(q("a:Mailbox")) or "" for u in request.iterfind(f"{{{A}}}Users/{{{A}}}User")
    ]
    wanted = [s.text or "" for s in request.iterfind(f"{{{A}}}RequestedSettings/{{{A}}}Setting")]
    if not users or not wanted or not all(_SETTING_NAME.match(s) for s in wanted):
        raise NotUnderstood(f"users {users!r}, settings {wanted!r}")
    return _response([_user_response(u, settings_for(u), wanted) for u in users])


def _user_response(address: str, settings: dict[str, str] | None, wanted: list[str]) -> str:
    if settings is None:
        return (
            "<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: "
            f"'{escape(address)}'</ErrorMessage><RedirectTarget i:nil=\"true\"/>"
            "<UserSettingErrors/><UserSettings/></UserResponse>"
        )
    have = [s for s in wanted if s in settings]
    missing = [s for s in wanted if s not in settings]
    errors = "".join(
        f"<UserSettingError><ErrorCode>SettingIsNotAvailable</ErrorCode><ErrorMessage>User "
        f"setting '{s}' is not available. </ErrorMessage><SettingName>{s}</SettingName>"
        "</UserSettingError>"
        for s in missing
    )
    values = "".join(
        f'<UserSetting i:type="StringSetting"><Name>{s}</Name><Value>{escape(settings[s])}'
        "</Value></UserSetting>"
        for s in have
    )
    return (
        "<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage>"
        f'<RedirectTarget i:nil="true"/><UserSettingErrors>{errors}</UserSettingErrors>'
        f"<UserSettings>{values}</UserSettings></UserResponse>"
    )


def _response(user_responses: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}" xmlns:a="{WSA}"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{ACTION}Response</a:Action>'
        f'<h:ServerVersionInfo xmlns:h="{A}" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><h:MajorVersion>15</h:MajorVersion>'
        "<h:MinorVersion>1</h:MinorVersion><h:MajorBuildNumber>2507</h:MajorBuildNumber>"
        "<h:MinorBuildNumber>6</h:MinorBuildNumber><h:Version>Exchange2015</h:Version>"
        "</h:ServerVersionInfo></s:Header><s:Body>"
        f'<GetUserSettingsResponseMessage xmlns="{A}"><Response '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ErrorCode>NoError</ErrorCode>'
        "<ErrorMessage/><UserResponses>"
        + "".join(user_responses)
        + "</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"
    ).encode()


def fault(text: str) -> bytes:
    """The SOAP fault WCF sends for a request it cannot dispatch."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{S}"><s:Body><s:Fault><faultcode>s:Client</faultcode>'
        f"<faultstring>{escape(text)}</faultstring></s:Fault></s:Body></s:Envelope>"
    ).encode()


def mailbox_settings(address: str, display_name: str, ews_url: str) -> dict[str, str]:
    """The settings Exchange returns for a mailbox (those exchangelib reads, and a few more)."""
    return {
        "UserDisplayName": display_name,
        "AutoDiscoverSMTPAddress": address,
        "ExternalEwsUrl": ews_url,
        "InternalEwsUrl": ews_url,
        "EwsSupportedSchemas": SUPPORTED_SCHEMAS,
        "CasVersion": "15.1.2507.6",
    }
