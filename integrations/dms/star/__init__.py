"""STAR RepairOrder BOD (``kind = "star"``): ShowRepairOrder from a folder or over HTTP.

``bod.py`` reads and writes the documents (and says what is verified), ``fields.py``
maps the noun, ``adapter.py`` fetches the documents.
"""

from integrations.dms.star.adapter import StarAdapter

__all__ = ["StarAdapter"]
