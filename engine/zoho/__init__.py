"""Zoho CRM v8 client: OAuth tokens, records API, outcome table and retries."""

from engine.zoho.client import RecordResult, ZohoClient
from engine.zoho.settings import DATA_CENTERS, ZohoSettings

__all__ = ["DATA_CENTERS", "RecordResult", "ZohoClient", "ZohoSettings"]
