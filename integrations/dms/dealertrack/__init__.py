"""Dealertrack OpenTrack (``kind = "dealertrack"``): SOAP ServiceAPI with WS-Security.

``soap.py`` holds the envelopes and their sources, ``fields.py`` the record, and
``adapter.py`` how Pitwall polls.
"""

from integrations.dms.dealertrack.adapter import OPENTRACK_URL, DealertrackAdapter
from integrations.dms.dealertrack.soap import parse_xml

__all__ = ["OPENTRACK_URL", "DealertrackAdapter", "parse_xml"]
