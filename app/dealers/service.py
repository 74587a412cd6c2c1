"""Dealer groups and rooftops: loading the TOML configuration, finding rooftops."""

from __future__ import annotations

import copy
import threading
import time
import weakref
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, inspect, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from app.config import ConfigError, DealerConfig, RooftopConfig
from app.dealers.models import DealerGroup, Rooftop
from integrations.dms.registry import validate_settings


@dataclass
class LoadReport:
    """What `config load` changed, for the person who ran it."""

    group: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    group_changed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated or self.group_changed)


def check_dms_settings(config: DealerConfig, source: str) -> None:
    """Ask each rooftop's DMS adapter whether its settings are complete and known."""
    for rooftop in config.rooftop:
        problems = validate_settings(rooftop.dms.kind, rooftop.dms.adapter_settings())
        if problems:
            # Problems read "dms.key: what" or "dms.key is missing".
            first = problems[0]
            key, sep, problem = first.partition(":")
            if not sep or " " in key:
                key, _, problem = first.partition(" ")
            raise ConfigError(source, f"rooftop[{rooftop.slug}].{key}", problem.strip())


def _rooftop_columns(cfg: RooftopConfig) -> dict[str, object]:
    return {
        "name": cfg.name,
        "timezone": cfg.timezone,
        "sms_from": cfg.sms_from,
        "whatsapp_from": cfg.whatsapp_from,
        "messaging_service_sid": cfg.messaging_service_sid,
        "service_desk": cfg.service_desk,
        "dms_kind": cfg.dms.kind,
        "active": True,
        "config": cfg.model_dump(mode="json"),
    }


def apply_dealer_config(session: Session, *, config: DealerConfig, source: str) -> LoadReport:
    """Create or update the group and its rooftops in place. Loading twice changes nothing.

    Rooftops missing from the file are deactivated (kept, with their history), not deleted.
    """
    check_dms_settings(config, source)
    group = session.scalar(select(DealerGroup).where(DealerGroup.name == config.group.name))
    report = LoadReport(group=config.group.name)
    if group is None:
        group = DealerGroup(name=config.group.name)
        session.add(group)
        report.group_changed = True
    for attr in ("default_region", "recovery_window_days"):
        value = getattr(config.group, attr)
        if getattr(group, attr, None) != value:
            setattr(group, attr, value)
            report.group_changed = True
    session.flush()

    existing = {
        r.slug: r for r in session.scalars(select(Rooftop).where(Rooftop.group_id == group.id))
    }
    for cfg in config.rooftop:
        _check_number_not_taken(session, cfg, group.id, source)
        columns = _rooftop_columns(cfg)
        rooftop = existing.pop(cfg.slug, None)
        if rooftop is None:
            session.add(Rooftop(group_id=group.id, slug=cfg.slug, **columns))
            report.created.append(cfg.slug)
            continue
        changed = {k: v for k, v in columns.items() if getattr(rooftop, k) != v}
        for key, value in changed.items():
            setattr(rooftop, key, value)
        (report.updated if changed else report.unchanged).append(cfg.slug)
    for slug, rooftop in existing.items():
        if rooftop.active:
            rooftop.active = False
            report.deactivated.append(slug)
    session.flush()
    if report.changed:
        forget_cached_rooftops()
    return report


def _check_number_not_taken(
    session: Session, cfg: RooftopConfig, group_id: int, source: str
) -> None:
    """Inbound texts find their rooftop by `To`: a number may belong to one rooftop only."""
    for key in ("sms_from", "whatsapp_from"):
        number = getattr(cfg, key)
        if not number:
            continue
        other = session.scalar(
            select(Rooftop).where(
                or_(Rooftop.sms_from == number, Rooftop.whatsapp_from == number),
                Rooftop.active.is_(True),
                ~((Rooftop.group_id == group_id) & (Rooftop.slug == cfg.slug)),
            )
        )
        if other is not None and not (other.group_id == group_id and other.slug == cfg.slug):
            raise ConfigError(
                source,
                f"rooftop[{cfg.slug}].{key}",
                f"{number} is already used by rooftop {other.slug!r}",
            )


# Every inbound text and call looks its rooftop up by the number it was sent to, and
# rooftops change only when someone loads a config. So a process keeps each rooftop it
# found for ROOFTOP_CACHE_SECONDS: a `config load` in another process (a changed template,
# a deactivated rooftop) reaches webhooks within that time; one in this process at once
# (apply_dealer_config forgets them). Unknown numbers are not kept (anyone can send them).
ROOFTOP_CACHE_SECONDS = 10.0
_rooftops: weakref.WeakKeyDictionary[Engine, dict[str, tuple[float, Rooftop]]] = (
    weakref.WeakKeyDictionary()
)
_rooftops_lock = threading.Lock()


def forget_cached_rooftops() -> None:
    """Drop every rooftop `rooftop_for_number` keeps (after a config change)."""
    with _rooftops_lock:
        _rooftops.clear()


def rooftop_for_number(session: Session, number: str) -> Rooftop | None:
    """The active rooftop that owns a sender number (SMS or WhatsApp, with or without prefix).

    At most ROOFTOP_CACHE_SECONDS old; the rooftop is attached to `session` either way.
    """
    bare = number.removeprefix("whatsapp:")
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with _rooftops_lock:
        kept = _rooftops.get(engine, {}).get(bare)
    if (
        kept is not None
        and time.monotonic() - kept[0] < ROOFTOP_CACHE_SECONDS
        # A session holding the rooftop already (maybe changed) asks the database, as before.
        and identity_key(Rooftop, kept[1].id) not in session.identity_map
    ):
        return _attach(session, kept[1])
    found = session.scalar(
        select(Rooftop)
        .where(
            or_(Rooftop.sms_from == bare, Rooftop.whatsapp_from == bare), Rooftop.active.is_(True)
        )
        .limit(1)
    )
    if found is not None and not session.is_modified(found):
        # A detached copy (the caller may change its own instance), settings validated once.
        copied = Rooftop(**{a.key: getattr(found, a.key) for a in inspect(Rooftop).column_attrs})
        make_transient_to_detached(copied)
        copied.__dict__["_settings_cache"] = (
            copy.deepcopy(found.config),
            found.settings,
        )
        with _rooftops_lock:
            _rooftops.setdefault(engine, {})[bare] = (time.monotonic(), copied)
    return found


def _attach(session: Session, kept: Rooftop) -> Rooftop:
    """The kept rooftop as this session's instance, without a query."""
    rooftop = session.merge(kept, load=False)
    rooftop.__dict__["_settings_cache"] = kept.__dict__["_settings_cache"]
    return rooftop


def rooftop_by_slug(session: Session, *, group_id: int, slug: str) -> Rooftop | None:
    return session.scalar(select(Rooftop).where(Rooftop.group_id == group_id, Rooftop.slug == slug))


def active_rooftops(session: Session) -> list[Rooftop]:
    return list(
        session.scalars(select(Rooftop).where(Rooftop.active.is_(True)).order_by(Rooftop.id))
    )


def single_group(session: Session, name: str | None = None) -> DealerGroup:
    """The group a CLI command acts on: the named one, or the only one there is."""
    if name is not None:
        group = session.scalar(select(DealerGroup).where(DealerGroup.name == name))
        if group is None:
            raise LookupError(f"no dealer group named {name!r}; load a config first")
        return group
    groups = list(session.scalars(select(DealerGroup).limit(2)))
    if not groups:
        raise LookupError("no dealer group yet; run `pitwall config load FILE` first")
    if len(groups) > 1:
        raise LookupError("several dealer groups exist; say which with --group NAME")
    return groups[0]
