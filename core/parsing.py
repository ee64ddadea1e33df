"""Values as users and config files give them: typed lists of numbers (the app's text boxes, the CLI's
comma-separated flags), and the configs' checks of whole numbers and named choices."""

from __future__ import annotations

import enum
import math
import numbers

from core.errors import ConfigError


def whole(value, low: int, high: float = math.inf) -> bool:
    """Whether `value` is an integer (a bool is not one) from low to high."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


def member_of(kind: type[enum.StrEnum], value, what: str):
    """`value` (a member of the str enum `kind`, or its string) as that member; a ConfigError naming `what` and the
    choices when it is neither."""
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"Unknown {what} '{value}'; choose one of {', '.join(kind)}.") from None


def number_list(text: str, kind: type, what: str) -> tuple:
    """'0.01, 0.03' → (0.01, 0.03): numbers of `kind` (int or float) separated by commas or semicolons.
    A ConfigError naming `what` when a part is not such a number, is empty ('1,,2'), or there is none."""
    parts = [part.strip() for part in text.replace(";", ",").split(",")]
    if not any(parts):
        raise ConfigError(f"{what}: give at least one.")
    try:
        if "" in parts:
            raise ValueError
        return tuple(kind(part) for part in parts)
    except ValueError:
        numbers = "whole numbers" if kind is int else "numbers"
        raise ConfigError(f"{what} must be {numbers} separated by commas, not '{text}'.") from None
