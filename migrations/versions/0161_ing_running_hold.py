"""SQLite: the running totals' triggers stand aside for a meter held in ``consumption_running_hold`` — the ingest
service holds a meter while it recomputes a range of its days (a backfill between readings, a revised value), then
writes the range's running totals itself and shifts the later days once by the range's net change. Before, every
daily row the recompute deleted or inserted updated every later day of the meter (a backfill before d later days
cost ~2 x its days x d row updates: O(days²) for a history filled from newest to oldest). The running row of an
inserted day also reads its previous day once instead of four times.

Revision ID: 0161_ing_running_hold
Revises: 0160_ing_pg_running_off
"""
from alembic import op

revision = '0161_ing_running_hold'
down_revision = '0160_ing_pg_running_off'
branch_labels = None
depends_on = None

HELD = "NOT EXISTS (SELECT 1 FROM consumption_running_hold h WHERE h.meter_id = {row}.meter_id)"
# As migration 0100's, each running-total statement only when the meter is not held.
ADD_TO_AREA = """
    INSERT INTO consumption_area_daily (area_id, bucket, import_wh, export_wh, meters, intervals)
    SELECT {area}, {row}.bucket, {row}.import_wh, {row}.export_wh, 1, {row}.intervals FROM meter
    WHERE meter.id = {row}.meter_id
    ON CONFLICT (area_id, bucket) DO UPDATE SET import_wh = consumption_area_daily.import_wh + excluded.import_wh,
        export_wh = consumption_area_daily.export_wh + excluded.export_wh,
        meters = consumption_area_daily.meters + 1, intervals = consumption_area_daily.intervals + excluded.intervals"""
TAKE_FROM_AREA = """
    UPDATE consumption_area_daily SET import_wh = import_wh - {row}.import_wh, export_wh = export_wh - {row}.export_wh,
        meters = meters - 1, intervals = intervals - {row}.intervals
    WHERE bucket = {row}.bucket AND area_id = (SELECT {area} FROM meter WHERE meter.id = {row}.meter_id)"""
CHANGE_IN_AREA = """
    UPDATE consumption_area_daily SET import_wh = import_wh + NEW.import_wh - OLD.import_wh,
        export_wh = export_wh + NEW.export_wh - OLD.export_wh, intervals = intervals + NEW.intervals - OLD.intervals
    WHERE bucket = NEW.bucket
      AND area_id = (SELECT coalesce(meter.area_id, 0) FROM meter WHERE meter.id = NEW.meter_id)"""
SHIFT_LATER = """
    UPDATE consumption_daily_running SET import_wh = import_wh + {sign}({imp}), export_wh = export_wh + {sign}({exp}),
        intervals = intervals + {sign}({n}), days = days + {days}
    WHERE meter_id = {row}.meter_id AND bucket {op} {row}.bucket AND {held}"""
INSERT_RUNNING = """
    INSERT INTO consumption_daily_running (meter_id, bucket, import_wh, export_wh, intervals, days)
    SELECT NEW.meter_id, NEW.bucket, NEW.import_wh + coalesce(p.import_wh, 0), NEW.export_wh + coalesce(p.export_wh, 0),
        NEW.intervals + coalesce(p.intervals, 0), 1 + coalesce(p.days, 0)
    FROM (SELECT 1) AS one LEFT JOIN (SELECT import_wh, export_wh, intervals, days FROM consumption_daily_running
        WHERE meter_id = NEW.meter_id AND bucket < NEW.bucket ORDER BY bucket DESC LIMIT 1) AS p ON 1
    WHERE {held}"""
DELETE_RUNNING = ("DELETE FROM consumption_daily_running WHERE meter_id = OLD.meter_id AND bucket = OLD.bucket "
                  "AND {held}")
AREA = "coalesce(meter.area_id, 0)"


def _bodies(held: bool) -> dict[str, list[str]]:
    new, old = (HELD.format(row="NEW"), HELD.format(row="OLD")) if held else ("1", "1")
    return {
        "insert": [SHIFT_LATER.format(sign="", imp="NEW.import_wh", exp="NEW.export_wh", n="NEW.intervals", days="1",
                                      row="NEW", op=">", held=new), INSERT_RUNNING.format(held=new),
                   ADD_TO_AREA.format(area=AREA, row="NEW")],
        "delete": [SHIFT_LATER.format(sign="-", imp="OLD.import_wh", exp="OLD.export_wh", n="OLD.intervals",
                                      days="-1", row="OLD", op=">", held=old), DELETE_RUNNING.format(held=old),
                   TAKE_FROM_AREA.format(area=AREA, row="OLD")],
        "update": [SHIFT_LATER.format(sign="", imp="NEW.import_wh - OLD.import_wh",
                                      exp="NEW.export_wh - OLD.export_wh", n="NEW.intervals - OLD.intervals",
                                      days="0", row="NEW", op=">=", held=new), CHANGE_IN_AREA],
    }


def _triggers(held: bool) -> None:
    for event, body in _bodies(held).items():
        op.execute(f'DROP TRIGGER IF EXISTS hes_daily_aggregates_{event}')
        op.execute(f"CREATE TRIGGER hes_daily_aggregates_{event} AFTER {event.upper()} ON consumption_daily BEGIN "
                   + "; ".join(body) + "; END")


def upgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.execute('CREATE TABLE consumption_running_hold (meter_id INTEGER NOT NULL PRIMARY KEY)')
    _triggers(held=True)


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    _triggers(held=False)
    op.execute('DROP TABLE IF EXISTS consumption_running_hold')
