"""Soak fixtures: the same as the reliability suite's."""

from tests.reliability.conftest import (  # noqa: F401
    app_port,
    app_settings,
    served_app,
    shop,
)
