"""PostgreSQL: partition the reading table by month

Revision ID: 0030_reading_partitions
Revises: 0020_remote
Create Date: 2026-11-21

On PostgreSQL the reading table becomes ``PARTITION BY RANGE (ts)`` with one partition per month
(the past year, this month and three ahead; later months are created by the partition task) and a
default partition for anything outside. Other databases keep the plain table.
"""
import datetime as dt

from alembic import op

revision = '0030_reading_partitions'
down_revision = '0020_remote'
branch_labels = None
depends_on = None


def _months(first: int, last: int) -> list[dt.date]:
    today = dt.datetime.now(dt.UTC).date().replace(day=1)
    out = []
    for offset in range(first, last + 1):
        index = today.year * 12 + today.month - 1 + offset
        out.append(dt.date(index // 12, index % 12 + 1, 1))
    return out


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE reading RENAME TO reading_unpartitioned")
    op.execute("ALTER TABLE reading_unpartitioned RENAME CONSTRAINT uq_reading_key TO uq_reading_key_unpartitioned")
    op.execute("ALTER TABLE reading_unpartitioned RENAME CONSTRAINT reading_pkey TO reading_unpartitioned_pkey")
    op.execute("ALTER INDEX ix_reading_channel_ts RENAME TO ix_reading_channel_ts_unpartitioned")
    op.execute("""
        CREATE TABLE reading (
            id bigint NOT NULL DEFAULT nextval('reading_id_seq'),
            meter_id integer NOT NULL REFERENCES meter (id) ON DELETE CASCADE,
            channel_id integer NOT NULL REFERENCES channel (id),
            ts timestamptz NOT NULL,
            value double precision NOT NULL,
            quality smallint NOT NULL,
            source smallint NOT NULL,
            received_at timestamptz NOT NULL,
            CONSTRAINT reading_pkey PRIMARY KEY (id, ts),
            CONSTRAINT uq_reading_key UNIQUE (meter_id, channel_id, ts)
        ) PARTITION BY RANGE (ts)""")
    op.execute("CREATE INDEX ix_reading_channel_ts ON reading (channel_id, ts)")
    op.execute("CREATE TABLE reading_default PARTITION OF reading DEFAULT")
    for start in _months(-12, 3):
        index = start.year * 12 + start.month
        end = dt.date(index // 12, index % 12 + 1, 1)
        op.execute(f"CREATE TABLE reading_y{start:%Y}m{start:%m} PARTITION OF reading "
                   f"FOR VALUES FROM ('{start:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')")
    op.execute("INSERT INTO reading (id, meter_id, channel_id, ts, value, quality, source, received_at) "
               "SELECT id, meter_id, channel_id, ts, value, quality, source, received_at FROM reading_unpartitioned")
    op.execute("ALTER SEQUENCE reading_id_seq OWNED BY reading.id")
    op.execute("DROP TABLE reading_unpartitioned")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE reading RENAME TO reading_partitioned")
    op.execute("ALTER TABLE reading_partitioned RENAME CONSTRAINT uq_reading_key TO uq_reading_key_partitioned")
    op.execute("ALTER TABLE reading_partitioned RENAME CONSTRAINT reading_pkey TO reading_partitioned_pkey")
    op.execute("ALTER INDEX ix_reading_channel_ts RENAME TO ix_reading_channel_ts_partitioned")
    op.execute("""
        CREATE TABLE reading (
            id bigint NOT NULL DEFAULT nextval('reading_id_seq') PRIMARY KEY,
            meter_id integer NOT NULL REFERENCES meter (id) ON DELETE CASCADE,
            channel_id integer NOT NULL REFERENCES channel (id),
            ts timestamptz NOT NULL, value double precision NOT NULL, quality smallint NOT NULL,
            source smallint NOT NULL, received_at timestamptz NOT NULL,
            CONSTRAINT uq_reading_key UNIQUE (meter_id, channel_id, ts))""")
    op.execute("CREATE INDEX ix_reading_channel_ts ON reading (channel_id, ts)")
    op.execute("INSERT INTO reading SELECT id, meter_id, channel_id, ts, value, quality, source, received_at "
               "FROM reading_partitioned")
    op.execute("ALTER SEQUENCE reading_id_seq OWNED BY reading.id")
    op.execute("DROP TABLE reading_partitioned")
