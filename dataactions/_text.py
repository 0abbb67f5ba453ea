"""Text checks shared by the readers and the normalizer."""

from __future__ import annotations

__all__ = ["is_unicode"]


def is_unicode(text: str) -> bool:
    """False when the text holds surrogates (undecodable bytes, or lone surrogates from a JSON escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
