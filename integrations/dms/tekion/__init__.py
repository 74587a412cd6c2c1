"""Tekion APC (``kind = "tekion"``): token flow, headers and the repair-order search.

``adapter.py`` holds the calls, ``fields.py`` the record; both say what is second-hand.
"""

from integrations.dms.tekion.adapter import TEKION_BASE_URL, TekionAdapter

__all__ = ["TEKION_BASE_URL", "TekionAdapter"]
