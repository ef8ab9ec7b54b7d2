"""Connection settings of the Zoho CRM client and the data centers it can reach."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Data center -> (accounts server, API domain). The token endpoint is
# `<accounts server>/oauth/v2/token`; API calls go to the `api_domain` of the token response,
# which for these data centers equals the second entry. Canada's accounts server is on
# `zohocloud.ca`, unlike every other data center.
DATA_CENTERS: dict[str, tuple[str, str]] = {
    "us": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
}

# The data center the TypeScript connector defaulted to, kept so that its `.env` keeps working.
DEFAULT_DATA_CENTER = "eu"
DEFAULT_ACCOUNTS_URL, DEFAULT_API_DOMAIN = DATA_CENTERS[DEFAULT_DATA_CENTER]

# The read timeout stays well below the default event time budget (20 s), so a call that hangs
# leaves time for a retry before the service responds to NSPS.
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_CONCURRENCY = 5


@dataclass(frozen=True)
class ZohoSettings:
    """Everything the Zoho client needs; built from the environment by the service."""

    accounts_url: str
    api_domain: str
    """API domain used until the first token response names one."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_file: Path | None = None
    """Access-token cache shared by the processes of one deployment; `None` keeps it in memory."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    """Read timeout of one HTTP call."""

    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Maximum Zoho calls in flight at once from this client (Zoho allows 5 to 25 per org,
    by edition)."""

    trigger: tuple[str, ...] | None = None
    """Automation to run on writes: `None` omits `trigger` (Zoho runs workflows, approvals and
    blueprints), `()` sends `"trigger": []` to suppress them all."""

    refresh_margin_seconds: float = 300.0
    """Refresh the access token when it expires within this many seconds."""

    api_version: str = "v8"
    max_retries: int = 3
    """Retries of one call after a transient failure, on top of the first attempt."""

    retry_base_seconds: float = 0.5
    """First backoff delay; each further retry doubles it, with full jitter."""

    retry_max_seconds: float = 30.0

    @classmethod
    def for_data_center(
        cls,
        data_center: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        **options: object,
    ) -> ZohoSettings:
        """Build settings for a data center name such as `eu` or `ca`."""
        key = data_center.strip().lower()
        if key not in DATA_CENTERS:
            known = ", ".join(sorted(DATA_CENTERS))
            raise ValueError(f"unknown Zoho data center {data_center!r}: expected one of {known}")
        accounts_url, api_domain = DATA_CENTERS[key]
        return cls(
            accounts_url=accounts_url,
            api_domain=api_domain,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            **options,  # type: ignore[arg-type]
        )

    @property
    def token_url(self) -> str:
        return f"{self.accounts_url.rstrip('/')}/oauth/v2/token"
