"""slow figures: the last count of today's completeness and of revenue leakage per scope, shared by every process,
so no request (nor the first after a restart) counts them

Revision ID: 0150_rep_slow_figure
Revises: 0140_rep_detection_run
"""
import sqlalchemy as sa
from alembic import op

from app.models.types import UTCDateTime

revision = '0150_rep_slow_figure'
down_revision = '0140_rep_detection_run'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'slow_figure',
        sa.Column('key', sa.String(length=255), primary_key=True),
        sa.Column('value', sa.Text()),
        sa.Column('as_of', UTCDateTime(timezone=True)),
        sa.Column('counted_ms', sa.Integer()),
        sa.Column('asked_at', UTCDateTime(timezone=True)),
        sa.Column('refreshing_since', UTCDateTime(timezone=True)),
    )


def downgrade():
    op.drop_table('slow_figure')
