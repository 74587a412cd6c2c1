"""CDK Drive through Fortellis' Service Repair Order API v1 (``kind = "cdk"``).

See ``adapter.py`` for the calls and ``fields.py`` for the record, each with its source.
"""

from integrations.dms.cdk.adapter import FORTELLIS_BASE_URL, FORTELLIS_TOKEN_URL, CdkAdapter

__all__ = ["FORTELLIS_BASE_URL", "FORTELLIS_TOKEN_URL", "CdkAdapter"]
