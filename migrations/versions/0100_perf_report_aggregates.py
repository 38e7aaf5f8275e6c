"""report aggregates kept by the database as the daily rollup changes: per area and day, and running totals
per meter (so a consumption report over a range reads two rows per meter, not one per meter-day)

Revision ID: 0100_perf_report_aggregates
Revises: 0090_ing_process_loop_lag
"""
import sqlalchemy as sa
from alembic import op

revision = '0100_perf_report_aggregates'
down_revision = '0090_ing_process_loop_lag'
branch_labels = None
depends_on = None


# What a daily-rollup row adds to its area's day (NEW) or takes away (OLD); ``area`` is the meter's area (0: none).
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
# Running totals: a row holds the meter's totals up to and including its day; later days move with it.
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
                                row="NEW", op=">"), INSERT_RUNNING,
             ADD_TO_AREA.format(area="coalesce(meter.area_id, 0)", row="NEW")]
ON_DELETE = [SHIFT_LATER.format(sign="-", imp="OLD.import_wh", exp="OLD.export_wh", n="OLD.intervals", days="-1",
                                row="OLD", op=">"),
             "DELETE FROM consumption_daily_running WHERE meter_id = OLD.meter_id AND bucket = OLD.bucket",
             TAKE_FROM_AREA.format(area="coalesce(meter.area_id, 0)", row="OLD")]
ON_UPDATE = [SHIFT_LATER.format(sign="", imp="NEW.import_wh - OLD.import_wh", exp="NEW.export_wh - OLD.export_wh",
                                n="NEW.intervals - OLD.intervals", days="0", row="NEW", op=">="), CHANGE_IN_AREA]
# A meter moving to another area (or deleted: before its rollup rows cascade away) moves its days with it.
METER_OUT = """
    UPDATE consumption_area_daily SET
        import_wh = import_wh - (SELECT d.import_wh FROM consumption_daily d WHERE d.meter_id = OLD.id
                                 AND d.bucket = consumption_area_daily.bucket),
        export_wh = export_wh - (SELECT d.export_wh FROM consumption_daily d WHERE d.meter_id = OLD.id
                                 AND d.bucket = consumption_area_daily.bucket),
        intervals = intervals - (SELECT d.intervals FROM consumption_daily d WHERE d.meter_id = OLD.id
                                 AND d.bucket = consumption_area_daily.bucket),
        meters = meters - 1
    WHERE area_id = coalesce(OLD.area_id, 0)
      AND bucket IN (SELECT d.bucket FROM consumption_daily d WHERE d.meter_id = OLD.id)"""
METER_IN = """
    INSERT INTO consumption_area_daily (area_id, bucket, import_wh, export_wh, meters, intervals)
    SELECT coalesce(NEW.area_id, 0), d.bucket, d.import_wh, d.export_wh, 1, d.intervals FROM consumption_daily d
    WHERE d.meter_id = NEW.id
    ON CONFLICT (area_id, bucket) DO UPDATE SET import_wh = consumption_area_daily.import_wh + excluded.import_wh,
        export_wh = consumption_area_daily.export_wh + excluded.export_wh,
        meters = consumption_area_daily.meters + 1, intervals = consumption_area_daily.intervals + excluded.intervals"""
AREA_CHANGED = "coalesce(OLD.area_id, 0) <> coalesce(NEW.area_id, 0)"


def _sqlite_trigger(name: str, when: str, body: list[str], condition: str = "") -> str:
    where = f" WHEN {condition}" if condition else ""
    return f"CREATE TRIGGER {name} {when}{where} BEGIN " + "; ".join(body) + "; END"


SQLITE_TRIGGERS = [
    _sqlite_trigger("hes_daily_aggregates_insert", "AFTER INSERT ON consumption_daily", ON_INSERT),
    _sqlite_trigger("hes_daily_aggregates_delete", "AFTER DELETE ON consumption_daily", ON_DELETE),
    _sqlite_trigger("hes_daily_aggregates_update", "AFTER UPDATE ON consumption_daily", ON_UPDATE),
    _sqlite_trigger("hes_meter_area_aggregates", "AFTER UPDATE OF area_id ON meter", [METER_OUT, METER_IN],
                    AREA_CHANGED),
    _sqlite_trigger("hes_meter_delete_aggregates", "BEFORE DELETE ON meter", [METER_OUT]),
]
TRIGGERS = ["hes_daily_aggregates_insert", "hes_daily_aggregates_delete", "hes_daily_aggregates_update",
            "hes_meter_area_aggregates", "hes_meter_delete_aggregates"]
PG_TRIGGER_TABLES = {"hes_daily_aggregates": "consumption_daily", "hes_meter_area_aggregates": "meter",
                     "hes_meter_delete_aggregates": "meter"}
POSTGRESQL_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION hes_rollup_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP = 'INSERT' THEN {'; '.join(ON_INSERT)}; RETURN NEW; "
    f"ELSIF TG_OP = 'DELETE' THEN {'; '.join(ON_DELETE)}; RETURN OLD; "
    f"ELSE {'; '.join(ON_UPDATE)}; RETURN NEW; END IF; END $$",
    "CREATE OR REPLACE FUNCTION hes_meter_area_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"{METER_OUT}; IF TG_OP = 'UPDATE' THEN {METER_IN}; RETURN NEW; END IF; RETURN OLD; END $$",
    "CREATE TRIGGER hes_daily_aggregates AFTER INSERT OR UPDATE OR DELETE ON consumption_daily "
    "FOR EACH ROW EXECUTE FUNCTION hes_rollup_aggregates()",
    "CREATE TRIGGER hes_meter_area_aggregates AFTER UPDATE OF area_id ON meter FOR EACH ROW "
    f"WHEN ({AREA_CHANGED}) EXECUTE FUNCTION hes_meter_area_aggregates()",
    "CREATE TRIGGER hes_meter_delete_aggregates BEFORE DELETE ON meter FOR EACH ROW "
    "EXECUTE FUNCTION hes_meter_area_aggregates()",
]
# The aggregates of the rollup rows already stored.
REBUILD = [
    "DELETE FROM consumption_area_daily",
    "INSERT INTO consumption_area_daily (area_id, bucket, import_wh, export_wh, meters, intervals) "
    "SELECT coalesce(m.area_id, 0), d.bucket, sum(d.import_wh), sum(d.export_wh), count(*), sum(d.intervals) "
    "FROM consumption_daily d JOIN meter m ON m.id = d.meter_id GROUP BY coalesce(m.area_id, 0), d.bucket",
    "DELETE FROM consumption_daily_running",
    "INSERT INTO consumption_daily_running (meter_id, bucket, import_wh, export_wh, intervals, days) "
    "SELECT meter_id, bucket, sum(import_wh) OVER w, sum(export_wh) OVER w, sum(intervals) OVER w, count(*) OVER w "
    "FROM consumption_daily WINDOW w AS (PARTITION BY meter_id ORDER BY bucket ROWS UNBOUNDED PRECEDING)",
]


def upgrade():
    op.create_table(
        'consumption_area_daily',
        sa.Column('area_id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
        sa.Column('import_wh', sa.Float(), nullable=False, server_default='0'),
        sa.Column('export_wh', sa.Float(), nullable=False, server_default='0'),
        sa.Column('meters', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('intervals', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('area_id', 'bucket'))
    op.create_index('ix_consumption_area_daily_bucket', 'consumption_area_daily', ['bucket'])
    op.create_table(
        'consumption_daily_running',
        sa.Column('meter_id', sa.Integer(), sa.ForeignKey('meter.id', ondelete='CASCADE'), nullable=False),
        sa.Column('bucket', sa.DateTime(timezone=True), nullable=False),
        sa.Column('import_wh', sa.Float(), nullable=False, server_default='0'),
        sa.Column('export_wh', sa.Float(), nullable=False, server_default='0'),
        sa.Column('intervals', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('days', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('meter_id', 'bucket'))
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)
    for statement in REBUILD:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for name in TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
    else:
        for name, table in PG_TRIGGER_TABLES.items():
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON {table}')
        for function in ('hes_rollup_aggregates', 'hes_meter_area_aggregates'):
            op.execute(f'DROP FUNCTION IF EXISTS {function}()')
    op.drop_table('consumption_daily_running')
    op.drop_index('ix_consumption_area_daily_bucket', table_name='consumption_area_daily')
    op.drop_table('consumption_area_daily')
