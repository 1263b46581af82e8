"""OrgSettings / UserOptions read from Web API rows, with the CRM's defaults."""

from __future__ import annotations

import pytest

from core.domain.correlation import find_token, format_token
from core.domain.crm_settings import (
    DEFAULT_HASH_FILTER_KEYWORDS,
    AutoCreate,
    IncomingFilter,
    OrgSettings,
    ResolutionPolicy,
    SettingsError,
    UserOptions,
)
from core.domain.model import RecordRef


def test_org_defaults_are_the_crms() -> None:
    org = OrgSettings.from_crm({})
    assert org == OrgSettings()
    assert org.correlation_enabled and not org.smart_matching and not org.token_only
    assert (org.hash_max_count, org.hash_min_address_count, org.hash_delta_subject_count) == (
        20,
        2,
        0,
    )
    assert org.hash_filter_keywords == DEFAULT_HASH_FILTER_KEYWORDS
    assert org.max_upload_bytes == 5_120 * 1024
    assert format_token(org.tokens, 1, 1) == "CRM:0001001"


def test_org_from_crm_row() -> None:
    org = OrgSettings.from_crm(
        {
            "emailcorrelationenabled": True,
            "enablesmartmatching": True,
            "tbx_tokenonlycorrelation": True,
            "trackingprefix": "TBX:;CRM:",
            "trackingtokenidbase": 500,
            "trackingtokeniddigits": 4,
            "maximumtrackingnumber": 9999,
            "hashmaxcount": 10,
            "hashminaddresscount": 3,
            "ignoreinternalemail": True,
            "maxuploadfilesize": 10_485_760,
            "@odata.etag": 'W/"1"',
        }
    )
    assert org.token_only and org.smart_matching and org.ignore_internal_email
    assert format_token(org.tokens, 1, 42) == "TBX:005010042"
    assert find_token("RE: x crm:005010042", org.tokens) == "CRM:005010042"
    assert (org.hash_max_count, org.hash_min_address_count) == (10, 3)
    assert org.max_upload_bytes == 10_485_760


def test_upload_limit_in_kilobytes_is_understood() -> None:
    assert OrgSettings.from_crm({"maxuploadfilesize": 5120}).max_upload_bytes == 5_242_880


def test_invalid_filter_regex_falls_back_with_warning() -> None:
    org = OrgSettings.from_crm({"hashfilterkeywords": "(unclosed"})
    assert org.hash_filter_keywords == DEFAULT_HASH_FILTER_KEYWORDS
    assert org.warnings and "hashfilterkeywords" in org.warnings[0]


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ({"emailcorrelationenabled": "yes"}, "emailcorrelationenabled"),
        ({"hashmaxcount": "20"}, "hashmaxcount"),
        ({"trackingtokeniddigits": 11}, "trackingtokeniddigits"),
        ({"trackingprefix": 5}, "trackingprefix"),
    ],
)
def test_bad_org_setting_names_key_and_value(row: dict[str, object], key: str) -> None:
    with pytest.raises(SettingsError) as info:
        OrgSettings.from_crm(row)
    assert info.value.key == key and key in str(info.value)


def test_user_options_from_usersettings_row() -> None:
    options = UserOptions.from_crm(
        {
            "systemuserid": "6a1b7c1e-0000-0000-0000-000000000001",
            "incomingemailfilteringmethod": 2,
            "autocreatecontactonpromote": 2,
            "tbx_trackreplies": True,
            "tbx_automatictracking": False,
            "tbx_resolutionpolicy": "unique_sender",
        },
        mailbox_addresses=("alex.morgan@contoso.example",),
    )
    assert options.incoming_filter is IncomingFilter.FROM_LEADS_CONTACTS_ACCOUNTS
    assert options.auto_create is AutoCreate.LEAD
    assert options.track_replies_to_tracked and not options.automatic_tracking_enabled
    assert options.resolution_policy is ResolutionPolicy.UNIQUE_SENDER
    assert options.mailbox_owner == RecordRef("systemuser", "6a1b7c1e-0000-0000-0000-000000000001")
    assert options.is_own_address("Alex.Morgan@contoso.example".lower())


def test_user_defaults() -> None:
    options = UserOptions.from_crm({})
    assert options.incoming_filter is IncomingFilter.RESPONSES_TO_CRM
    assert options.automatic_tracking_enabled and options.auto_create is AutoCreate.NONE


@pytest.mark.parametrize(
    "row",
    [
        {"incomingemailfilteringmethod": 5},
        {"autocreatecontactonpromote": 3},
        {"tbx_resolutionpolicy": "first"},
    ],
)
def test_bad_user_setting(row: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        UserOptions.from_crm(row)
