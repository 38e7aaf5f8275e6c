"""collection state: a cursor per (meter, profile), quarantined rows, revisions that were not applied

Revision ID: 0060_col_collection_state
Revises: 0050_iop_push_reception
"""
import sqlalchemy as sa
from alembic import op

import app.models.types  # noqa: F401  (custom column types used below)

revision = '0060_col_collection_state'
down_revision = '0050_iop_push_reception'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'collection_cursor',
        sa.Column('meter_id', sa.Integer(), sa.ForeignKey('meter.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('profile', sa.String(length=24), primary_key=True),
        sa.Column('last_ts', app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_entry', sa.BigInteger(), nullable=True),
        sa.Column('rows_read', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        'quarantined_row',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True),
        sa.Column('meter_id', sa.Integer(), sa.ForeignKey('meter.id', ondelete='CASCADE'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=True),
        sa.Column('source', sa.String(length=24), nullable=True),
        sa.Column('obis', sa.String(length=32), nullable=True),
        sa.Column('code', sa.Integer(), nullable=True),
        sa.Column('ts', app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('received_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_quarantined_row_meter_id', 'quarantined_row', ['meter_id'])
    with op.batch_alter_table('reading_revision') as batch:
        batch.add_column(sa.Column('applied', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    with op.batch_alter_table('reading_revision') as batch:
        batch.drop_column('applied')
    op.drop_index('ix_quarantined_row_meter_id', table_name='quarantined_row')
    op.drop_table('quarantined_row')
    op.drop_table('collection_cursor')
