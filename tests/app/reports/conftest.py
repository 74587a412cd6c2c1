"""The web app's fixtures (sample dealer, one login per role, served app) for report pages."""

from tests.app.web.conftest import cheap_password_hashing, served, world  # noqa: F401
