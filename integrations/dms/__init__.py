"""DMS adapters. The app imports only the port (``base``) and ``registry.build_adapter``."""
