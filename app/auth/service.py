"""API tokens and the principal a request acts as."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ROLES, ApiToken
from app.db import utcnow
from app.dealers.models import Rooftop

TOKEN_PREFIX = "pw_"


@dataclass(frozen=True)
class Principal:
    """Who is asking: their group, role, and (for advisors) the rooftops they may see."""

    group_id: int
    role: str
    rooftop_ids: frozenset[int] | None  # None: every rooftop of the group
    user_id: int | None = None
    token_id: int | None = None

    def can_see_rooftop(self, rooftop_id: int | None) -> bool:
        return rooftop_id is not None and (self.rooftop_ids is None or rooftop_id in self.rooftop_ids)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    # Tokens are 256-bit random: a fast hash is enough, and lookups stay indexed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(
    session: Session, *, group_id: int, name: str, role: str, rooftops: list[Rooftop] | None = None
) -> str:
    """Store a new token's hash and return the token (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            group_id=group_id,
            name=name,
            role=role,
            token_hash=hash_token(token),
            rooftops=list(rooftops or []),
        )
    )
    session.flush()
    return token


def principal_for_token(session: Session, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token, or None."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    )
    if row is None:
        return None
    row.last_used_at = utcnow()
    rooftop_ids = frozenset(r.id for r in row.rooftops) if row.role == "advisor" else None
    return Principal(group_id=row.group_id, role=row.role, rooftop_ids=rooftop_ids, token_id=row.id)
