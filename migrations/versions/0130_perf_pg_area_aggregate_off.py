"""PostgreSQL: the per-area daily aggregate is no longer kept by triggers (every ingest transaction of an area's
meters updated the same (area, day) row: concurrent ingest serialised on its lock and could deadlock across
areas); consumption reports read the meter-day rollup there. SQLite (one writer) keeps it. The per-meter running
totals stay on both (each meter's own rows only).

Revision ID: 0130_perf_pg_area_aggregate_off
Revises: 0120_hrd_command_priority
"""
from alembic import op

revision = '0130_perf_pg_area_aggregate_off'
down_revision = '0120_hrd_command_priority'
branch_labels = None
depends_on = None

SHIFT_LATER = """
    UPDATE consumption_daily_running SET import_wh = import_wh + {sign}({imp}), export_wh = export_wh + {sign}({exp}),
        intervals = intervals + {sign}({n}), days = days + {days}
    WHERE meter_id = {row}.meter_id AND bucket {op} {row}.bucket"""
PREVIOUS = ("(SELECT {col} FROM consumption_daily_running p WHERE p.meter_id = NEW.meter_id AND p.bucket < NEW.bucket "
            "ORDER BY p.bucket DESC LIMIT 1)")
INSERT_RUNNING = f"""
    INSERT INTO consumption_daily_running (meter_id, bucket, import_wh, export_wh, intervals, days)
    VALUES (NEW.meter_id, NEW.bucket, NEW.import_wh + coalesce({PREVIOUS.format(col='import_wh')}, 0),
            NEW.export_wh + coalesce({PREVIOUS.format(col='export_wh')}, 0),
            NEW.intervals + coalesce({PREVIOUS.format(col='intervals')}, 0),
            1 + coalesce({PREVIOUS.format(col='days')}, 0))"""
ON_INSERT = [SHIFT_LATER.format(sign="", imp="NEW.import_wh", exp="NEW.export_wh", n="NEW.intervals", days="1",
                                row="NEW", op=">"), INSERT_RUNNING]
ON_DELETE = [SHIFT_LATER.format(sign="-", imp="OLD.import_wh", exp="OLD.export_wh", n="OLD.intervals", days="-1",
                                row="OLD", op=">"),
             "DELETE FROM consumption_daily_running WHERE meter_id = OLD.meter_id AND bucket = OLD.bucket"]
ON_UPDATE = [SHIFT_LATER.format(sign="", imp="NEW.import_wh - OLD.import_wh", exp="NEW.export_wh - OLD.export_wh",
                                n="NEW.intervals - OLD.intervals", days="0", row="NEW", op=">=")]
RUNNING_ONLY = (
    "CREATE OR REPLACE FUNCTION hes_rollup_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP = 'INSERT' THEN {'; '.join(ON_INSERT)}; RETURN NEW; "
    f"ELSIF TG_OP = 'DELETE' THEN {'; '.join(ON_DELETE)}; RETURN OLD; "
    f"ELSE {'; '.join(ON_UPDATE)}; RETURN NEW; END IF; END $$")


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(RUNNING_ONLY)
    op.execute('DROP TRIGGER IF EXISTS hes_meter_area_aggregates ON meter')
    op.execute('DROP TRIGGER IF EXISTS hes_meter_delete_aggregates ON meter')
    op.execute('DROP FUNCTION IF EXISTS hes_meter_area_aggregates()')
    op.execute('DELETE FROM consumption_area_daily')  # no longer kept: empty rather than stale


def downgrade():
    """The per-area aggregate stays unkept on PostgreSQL (0100's downgrade drops it with the rest)."""
