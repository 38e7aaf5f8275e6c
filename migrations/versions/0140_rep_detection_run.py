"""detection runs: "Run detection now" runs in a task with progress the Investigations page polls

Revision ID: 0140_rep_detection_run
Revises: 0130_perf_pg_area_aggregate_off
"""
import sqlalchemy as sa
from alembic import op

from app.models.types import UTCDateTime

revision = '0140_rep_detection_run'
down_revision = '0130_perf_pg_area_aggregate_off'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'detection_run',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('as_of', sa.Date()),
        sa.Column('meters', sa.Integer()),
        sa.Column('checked', sa.Integer()),
        sa.Column('progress', sa.Integer()),
        sa.Column('result', sa.JSON()),
        sa.Column('message', sa.Text()),
        sa.Column('node_id', sa.String(length=64)),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('ab_user.id', ondelete='SET NULL')),
        sa.Column('created_at', UTCDateTime(timezone=True)),
        sa.Column('started_at', UTCDateTime(timezone=True)),
        sa.Column('finished_at', UTCDateTime(timezone=True)),
    )


def downgrade():
    op.drop_table('detection_run')
