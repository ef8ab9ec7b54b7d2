"""Action plans: what one event does in Zoho CRM, as data."""
