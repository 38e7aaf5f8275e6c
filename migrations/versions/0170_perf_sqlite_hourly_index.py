"""SQLite: the hourly rollup loses its index on ``bucket``. A meter-day of intervals adds ~25 hourly rows whose
bucket-index entries sit among every other meter's for the same hours, so each one dirtied a page of its own: ~25 of
the ~465 pages a batch wrote to the WAL. The only reader that needed it, the whole fleet's hourly consumption, now
goes through each meter's primary key (``reports.consumption._per_bucket``). PostgreSQL keeps the index (a fleet
there is large enough for the hourly totals to want it, and it cost no measurable time per batch).

Revision ID: 0170_perf_sqlite_hourly_index
Revises: 0161_ing_running_hold
"""
from alembic import op

revision = '0170_perf_sqlite_hourly_index'
down_revision = '0161_ing_running_hold'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP INDEX IF EXISTS ix_consumption_hourly_bucket')


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('CREATE INDEX IF NOT EXISTS ix_consumption_hourly_bucket ON consumption_hourly (bucket)')
