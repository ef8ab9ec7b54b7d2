"""Declarative NSPS to Zoho CRM connector engine."""

__version__ = "0.1.0"
