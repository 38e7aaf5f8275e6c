"""import jobs: large CSV imports run in the background with progress and a result page

Revision ID: 0110_hrd_import_job
Revises: 0100_perf_report_aggregates
"""
import sqlalchemy as sa
from alembic import op

from app.models.types import UTCDateTime

revision = '0110_hrd_import_job'
down_revision = '0100_perf_report_aggregates'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_job',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('filename', sa.String(length=255)),
        sa.Column('size_bytes', sa.BigInteger()),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('progress', sa.Integer()),
        sa.Column('line', sa.Integer()),
        sa.Column('created', sa.Integer()),
        sa.Column('updated', sa.Integer()),
        sa.Column('message', sa.Text()),
        sa.Column('errors', sa.JSON()),
        sa.Column('node_id', sa.String(length=64)),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('ab_user.id', ondelete='SET NULL')),
        sa.Column('created_at', UTCDateTime(timezone=True)),
        sa.Column('finished_at', UTCDateTime(timezone=True)),
    )
    op.create_index('ix_import_job_user_id', 'import_job', ['user_id'])


def downgrade():
    op.drop_index('ix_import_job_user_id', 'import_job')
    op.drop_table('import_job')
