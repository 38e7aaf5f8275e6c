"""The area tree: materialised paths kept right on every insert and move, and tree helpers."""

from __future__ import annotations

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Area, Meter
from app.services import ServiceError


def descendant_ids(area_id: int) -> list[int]:
    """Ids of an area and everything below it."""
    path = db.session.execute(select(Area.path).where(Area.id == area_id)).scalar()
    if path is None:
        return []
    return list(db.session.execute(select(Area.id).where(Area.path.startswith(path, autoescape=True))).scalars())


def area_choices() -> list[tuple[int, str]]:
    """(id, indented name) pairs in tree order, for selectors."""
    areas = db.session.execute(select(Area.id, Area.name, Area.path).order_by(Area.path)).all()
    by_path = sorted(areas, key=lambda a: [int(p) for p in a.path.strip("/").split("/") if p])
    return [(a.id, "\u2003" * (a.path.count("/") - 2) + a.name) for a in by_path]


def find_area(name_or_code: str) -> Area | None:
    """An area by code, full name (``A › B``) or unique name, case-insensitively."""
    wanted = name_or_code.strip().lower()
    if not wanted:
        return None
    areas = db.session.execute(select(Area)).scalars().all()
    for attr in ("code", "full_name", "name"):
        hits = [a for a in areas if (getattr(a, attr) or "").strip().lower() == wanted]
        if len(hits) == 1:
            return hits[0]
    return None


def delete_area(area: Area) -> None:
    """Delete an area that has no sub-areas; its meters become unassigned."""
    if db.session.execute(select(func.count()).where(Area.parent_id == area.id)).scalar():
        raise ServiceError(f"Area '{area.name}' has sub-areas; move or delete them first.", status=409)
    db.session.execute(update(Meter).where(Meter.area_id == area.id).values(area_id=None))
    db.session.delete(area)
