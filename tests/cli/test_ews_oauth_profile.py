"""A profile whose Exchange mailbox takes bearer tokens (``ews://…?auth=oauth``, issue 16):
only with the CRM's Microsoft sign-in, no mail password, the EWS permission consented at
sign-in, and the workspace's mailbox opened with the sign-in's tokens against the fake EWS
server that checks them as Exchange Online does."""

from __future__ import annotations

import pytest

from core.cli.sign_in import mail_scopes, open_mail
from core.config.profiles import ProfileConfigError, needs_mail_password, validate
from core.domain import demo_data
from core.mail.ews import EwsBackend
from core.mail.ews_auth import ews_scope
from tests.mail.helpers import make_message
from tests.plugins.ews_oauth import EwsOAuthSite

ORG = "https://contoso.crm.dynamics.com"
ME = demo_data.ME.email
URL = "ews://mail.contoso.com/EWS/Exchange.asmx?auth=oauth"


def profile(mail_url: str = URL, **more: str) -> dict[str, str]:
    return {"mail_url": mail_url, "crm_url": ORG, "crm_user": ME, "crm_auth": "microsoft", **more}


def test_an_oauth_exchange_mailbox_signs_in_with_microsoft() -> None:
    config = validate(profile(), "p.toml")
    assert config.mail_signs_in_with_microsoft and not config.uses_graph_mail
    assert not needs_mail_password(URL)
    assert needs_mail_password(URL.replace("oauth", "ntlm"))
    assert mail_scopes(config) == (ews_scope(),)
    with pytest.raises(ProfileConfigError) as refused:
        validate(profile(crm_auth="password"), "p.toml")
    assert "?auth=oauth signs in with the CRM's Microsoft sign-in" in str(refused.value)


def test_the_profiles_mailbox_opens_with_the_sign_ins_tokens(
    ews_oauth_site: EwsOAuthSite,
) -> None:
    server = ews_oauth_site.server
    server.mailbox(ME).create("Inbox", make_message(7), is_read=False)
    url = server.url() + "?auth=oauth"
    config = validate(profile(url, crm_url=ews_oauth_site.authority.server.url), "p.toml")
    sign_in = ews_oauth_site.signed_in(scopes=mail_scopes(config))
    with open_mail(config, "p", sign_in=sign_in) as mailbox:
        assert isinstance(mailbox, EwsBackend)
        assert "Inbox" in {f.path for f in mailbox.folders()}
    assert ("bearer", ME) in server.auth_log.signins and server.auth_log.refusals == []
