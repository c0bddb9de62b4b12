"""The one exception the lab raises: a message already phrased for the user (no traceback)."""

from __future__ import annotations


class LabError(Exception):
    """Something the lab could not do, with what to do about it when we know."""
