"""Admin pages: rooftops and their settings, message templates, users, tokens, the audit log."""
