"""How staff are named on the pages: their name, never a bare email."""

from __future__ import annotations

from app.auth.models import User


def staff_name(user: User | None) -> str:
    """The user's name; without one, a readable name made from the email's local part.

    "dana.ruiz@bayview.example" reads "Dana Ruiz": colleagues see a person, and the
    address (a login) is not spread across the pages.
    """
    if user is None:
        return "a former colleague"
    name = (getattr(user, "name", None) or "").strip()
    if name:
        return name
    local = user.email.split("@", 1)[0]
    words = [w for w in local.replace("_", ".").replace("-", ".").replace("+", ".").split(".") if w]
    return " ".join(w.capitalize() for w in words) or user.email
