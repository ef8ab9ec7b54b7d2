"""Search criteria for Zoho's `GET /{module}/search`, and the exact-match re-check."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Zoho reads `(`, `)` and `,` inside a value as syntax unless a backslash precedes them, so the
# backslash itself is escaped first.
CRITERIA_SPECIAL = ("\\", "(", ")", ",")


def escape_criteria_value(value: object) -> str:
    """Return `value` as a criteria value: `Smith, Jr.` becomes `Smith\\, Jr.`.

    Percent-encoding is left to `requests`, which encodes the whole `criteria` parameter
    (`+` as `%2B`, so it does not turn into a space).
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    for character in CRITERIA_SPECIAL:
        text = text.replace(character, "\\" + character)
    # NOTE: whether Zoho needs `:` escaped inside a value is unconfirmed; the value is the last
    # part of `(field:operator:value)`, so it is sent as is.
    return text


def equals_criteria(field: str, value: object) -> str:
    return f"({field}:equals:{escape_criteria_value(value)})"


def values_equal(found: Any, expected: Any) -> bool:
    """Tell whether a field value from Zoho is exactly `expected`.

    Zoho's `equals` matches words, so `ABC` also finds `ABC Inc`. Text compares exactly and
    case-sensitively; numbers compare by value whether Zoho returns them as numbers or strings;
    a lookup compares its `id`.
    """
    if isinstance(found, dict) and "id" in found:
        found = found["id"]
    if isinstance(expected, bool) or isinstance(found, bool):
        return found is expected
    if isinstance(expected, int | float | Decimal):
        try:
            return Decimal(str(found)) == Decimal(str(expected))
        except (InvalidOperation, ValueError):
            return False
    if isinstance(found, str) and isinstance(expected, str):
        return found == expected
    return False
