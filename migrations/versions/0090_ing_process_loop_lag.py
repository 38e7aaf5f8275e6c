"""running HES processes (web, comms, tasks) and their event-loop lag

Revision ID: 0090_ing_process_loop_lag
Revises: 0080_hrd_session_epoch
"""
import sqlalchemy as sa
from alembic import op

from app.models.types import UTCDateTime

revision = '0090_ing_process_loop_lag'
down_revision = '0080_hrd_session_epoch'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'hes_process',
        sa.Column('key', sa.String(length=96), primary_key=True),
        sa.Column('roles', sa.String(length=64), nullable=False),
        sa.Column('node_id', sa.String(length=64), nullable=True),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=True),
        sa.Column('heartbeat_at', UTCDateTime(), nullable=True),
        sa.Column('stats', sa.JSON(), nullable=True),
    )


def downgrade():
    op.drop_table('hes_process')
