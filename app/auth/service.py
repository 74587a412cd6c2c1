"""Logins, API tokens, and the principal a request acts as."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.auth.models import ROLES, ApiToken, User
from app.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from app.auth.sessions import revoke_user_sessions
from app.db import utcnow
from app.dealers.models import Rooftop

TOKEN_PREFIX = "pw_"
TOKEN_TOUCH_AFTER = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is asking: their group, role, and (for advisors) the rooftops they may see."""

    group_id: int
    role: str
    rooftop_ids: frozenset[int] | None  # None: every rooftop of the group
    user_id: int | None = None
    token_id: int | None = None

    def can_see_rooftop(self, rooftop_id: int | None) -> bool:
        return rooftop_id is not None and (
            self.rooftop_ids is None or rooftop_id in self.rooftop_ids
        )

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
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    now = utcnow()
    # Once a minute is enough to show "last used"; a write per API call is not.
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_AFTER:
        row.last_used_at = now
    rooftop_ids = frozenset(r.id for r in row.rooftops) if row.role == "advisor" else None
    return Principal(group_id=row.group_id, role=row.role, rooftop_ids=rooftop_ids, token_id=row.id)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class UserError(ValueError):
    """A user cannot be created as asked; the message says what to change."""


def create_user(
    session: Session,
    *,
    group_id: int,
    email: str,
    password: str,
    role: str,
    rooftops: list[Rooftop],
    name: str | None = None,
    dms_advisor_id: str | None = None,
) -> User:
    """Create a login. Advisors see only `rooftops` (at least one, all of this group)."""
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise UserError(f"{email!r} is not an email address (e.g. dana@bayview.example)")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if role == "advisor" and not rooftops:
        raise UserError("an advisor needs at least one rooftop")
    foreign = [r.slug for r in rooftops if r.group_id != group_id]
    if foreign:
        raise UserError(f"rooftop(s) {', '.join(foreign)} belong to another dealer group")
    taken = session.scalar(select(User.id).where(func.lower(User.email) == email))
    if taken is not None:
        raise UserError(f"a login for {email} already exists")
    user = User(
        group_id=group_id,
        email=email,
        password_hash=hash_password(password),
        role=role,
        active=True,
        rooftops=list(rooftops) if role == "advisor" else [],
        name=_clean(name),
        dms_advisor_id=_clean(dms_advisor_id),
    )
    session.add(user)
    session.flush()
    return user


def _clean(value: str | None) -> str | None:
    return " ".join(value.split()) or None if value else None


def update_profile(
    session: Session, *, user: User, name: str | None, dms_advisor_id: str | None
) -> None:
    """Set a login's display name and DMS advisor id (blank clears them)."""
    name, dms_advisor_id = _clean(name), _clean(dms_advisor_id)
    if name is not None and len(name) > 200:
        raise UserError("name: at most 200 characters")
    if dms_advisor_id is not None and len(dms_advisor_id) > 64:
        raise UserError("DMS advisor id: at most 64 characters")
    user.name, user.dms_advisor_id = name, dms_advisor_id


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The active user with this email and password, or None. Upgrades old hashes."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def active_user(session: Session, user_id: int) -> User | None:
    """The user a session belongs to, if they still may log in."""
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def deactivate_user(session: Session, *, group_id: int, user_id: int, now: datetime) -> bool:
    """Stop a login and end every session it has at once; False when no such active user."""
    user = session.get(User, user_id)
    if user is None or user.group_id != group_id or not user.active:
        return False
    user.active = False
    revoke_user_sessions(session, user_id=user.id, now=now)
    return True


def set_password(session: Session, *, user: User, password: str, now: datetime) -> int:
    """Give `user` a new password and end all their sessions (a thief's too); returns how many."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    return revoke_user_sessions(session, user_id=user.id, now=now)


def principal_for_user(user: User) -> Principal:
    """What a logged-in user may see: advisors their rooftops, others the whole group."""
    rooftop_ids = frozenset(r.id for r in user.rooftops) if user.role == "advisor" else None
    return Principal(
        group_id=user.group_id, role=user.role, rooftop_ids=rooftop_ids, user_id=user.id
    )


def users_of_group(session: Session, *, group_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .options(selectinload(User.rooftops))
            .where(User.group_id == group_id)
            .order_by(User.email)
        )
    )


def tokens_of_group(session: Session, *, group_id: int) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).where(ApiToken.group_id == group_id).order_by(ApiToken.id))
    )


def revoke_token(session: Session, *, group_id: int, token_id: int) -> bool:
    """Revoke a token of this group; False when there is no such (unrevoked) token."""
    token = session.get(ApiToken, token_id)
    if token is None or token.group_id != group_id or token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    return True
