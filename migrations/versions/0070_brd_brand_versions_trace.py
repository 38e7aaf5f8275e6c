"""brand definition versions; per-meter communication trace

Revision ID: 0070_brd_brand_versions_trace
Revises: 0061_col_cursor_captures
"""
from alembic import op
import sqlalchemy as sa

import app.models.types  # noqa: F401  (custom column types used below)

revision = '0070_brd_brand_versions_trace'
down_revision = '0061_col_cursor_captures'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'brand_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('brand_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('saved_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('saved_by', sa.String(length=64), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=True),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['brand_id'], ['meter_brand.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_brand_version_brand', 'brand_version', ['brand_id', 'version'], unique=True)
    op.create_table(
        'trace_frame',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meter_id', sa.Integer(), nullable=False),
        sa.Column('at', app.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('direction', sa.String(length=4), nullable=False),
        sa.Column('hex', sa.Text(), nullable=False),
        sa.Column('xml', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['meter_id'], ['meter.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_trace_frame_meter', 'trace_frame', ['meter_id', 'id'])
    with op.batch_alter_table('meter') as batch:
        batch.add_column(sa.Column('trace_until', app.models.types.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('meter') as batch:
        batch.drop_column('trace_until')
    op.drop_index('ix_trace_frame_meter', table_name='trace_frame')
    op.drop_table('trace_frame')
    op.drop_index('ix_brand_version_brand', table_name='brand_version')
    op.drop_table('brand_version')
