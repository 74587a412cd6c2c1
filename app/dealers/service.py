"""Dealer groups and rooftops: loading the TOML configuration, finding rooftops."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

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


def rooftop_for_number(session: Session, number: str) -> Rooftop | None:
    """The active rooftop that owns a sender number (SMS or WhatsApp, with or without prefix)."""
    bare = number.removeprefix("whatsapp:")
    return session.scalar(
        select(Rooftop)
        .where(
            or_(Rooftop.sms_from == bare, Rooftop.whatsapp_from == bare), Rooftop.active.is_(True)
        )
        .limit(1)
    )


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
