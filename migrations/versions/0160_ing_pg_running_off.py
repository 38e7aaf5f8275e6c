"""PostgreSQL: the per-meter running totals (``consumption_daily_running``, migration 0100) are no longer kept there.
Its consumption reports sum the meter-day rollup (``reports.consumption._meter_sums``: its parallel hash aggregate
was faster than two running-total probes a meter), so nothing read them, while every daily rollup row an ingest
wrote ran the trigger (a running row, four look-ups of the previous one, an update of every later day: all of a
meter's later days again for each past day a backfill writes). SQLite, whose reports read them, keeps them.

Revision ID: 0160_ing_pg_running_off
Revises: 0150_rep_slow_figure
"""
from alembic import op

revision = '0160_ing_pg_running_off'
down_revision = '0150_rep_slow_figure'
branch_labels = None
depends_on = None

# As migration 0130 left the trigger function (for the downgrade).
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
    op.execute('DROP TRIGGER IF EXISTS hes_daily_aggregates ON consumption_daily')
    op.execute('DROP FUNCTION IF EXISTS hes_rollup_aggregates()')
    op.execute('DELETE FROM consumption_daily_running')  # no longer kept: empty rather than stale


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(RUNNING_ONLY)
    op.execute('CREATE TRIGGER hes_daily_aggregates AFTER INSERT OR UPDATE OR DELETE ON consumption_daily '
               'FOR EACH ROW EXECUTE FUNCTION hes_rollup_aggregates()')
    op.execute('DELETE FROM consumption_daily_running')
    op.execute('INSERT INTO consumption_daily_running (meter_id, bucket, import_wh, export_wh, intervals, days) '
               'SELECT meter_id, bucket, sum(import_wh) OVER w, sum(export_wh) OVER w, sum(intervals) OVER w, '
               'count(*) OVER w FROM consumption_daily '
               'WINDOW w AS (PARTITION BY meter_id ORDER BY bucket ROWS UNBOUNDED PRECEDING)')
