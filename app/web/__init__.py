"""The web app: server-rendered pages for advisors, directors and admins."""
