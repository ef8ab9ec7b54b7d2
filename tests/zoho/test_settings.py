"""Zoho settings: one table of data centers and one set of client defaults for every caller."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.service.wiring import zoho_settings
from engine.zoho.settings import DATA_CENTERS, ZohoSettings

ENVIRON = {
    "API_TOKEN": "nsps-token-0123456789",
    "ZOHO_CRM_CLIENT_ID": "1000.CLIENTID",
    "ZOHO_CRM_CLIENT_SECRET": "client-secret-value",
    "ZOHO_CRM_REFRESH_TOKEN": "1000.refresh-token-value",
}
CLIENT_DEFAULTS = ZohoSettings(
    accounts_url="https://accounts.zoho.eu",
    api_domain="https://www.zohoapis.eu",
    client_id="c",
    client_secret="s",
    refresh_token="r",
)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(Settings.from_env(ENVIRON, env_file=None), id="settings from the environment"),
        pytest.param(Settings(api_token="nsps-token-0123456789"), id="settings built in code"),
    ],
)
def test_service_uses_client_defaults(settings: Settings) -> None:
    client = zoho_settings(settings)

    assert client.timeout_seconds == 10.0
    assert client.timeout_seconds == CLIENT_DEFAULTS.timeout_seconds
    assert client.connect_timeout_seconds == CLIENT_DEFAULTS.connect_timeout_seconds
    assert client.max_concurrency == CLIENT_DEFAULTS.max_concurrency
    assert client.accounts_url == DATA_CENTERS["eu"][0]
    assert client.api_domain == DATA_CENTERS["eu"][1]


@pytest.mark.parametrize("data_center", sorted(DATA_CENTERS))
def test_data_center_urls_agree(data_center: str) -> None:
    from_environment = Settings.from_env({**ENVIRON, "ZOHO_CRM_DC": data_center}, env_file=None)
    for_data_center = ZohoSettings.for_data_center(
        data_center, client_id="c", client_secret="s", refresh_token="r"
    )

    assert from_environment.zoho_accounts_url == for_data_center.accounts_url
    assert from_environment.zoho_api_domain == for_data_center.api_domain
