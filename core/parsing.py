"""Lists of numbers typed by a user, as the app's text boxes and the CLI's comma-separated flags take them."""

from __future__ import annotations

from core.errors import ConfigError


def number_list(text: str, kind: type, what: str) -> tuple:
    """'0.01, 0.03' → (0.01, 0.03): numbers of `kind` (int or float) separated by commas or semicolons.
    A ConfigError naming `what` when a part is not such a number or there is none."""
    try:
        values = tuple(kind(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        numbers = "whole numbers" if kind is int else "numbers"
        raise ConfigError(f"{what} must be {numbers} separated by commas, not '{text}'.") from None
    if not values:
        raise ConfigError(f"{what}: give at least one.")
    return values
