"""collection cursor: the profile's capture objects and capture period (what a complete row is)

Revision ID: 0061_col_cursor_captures
Revises: 0060_col_collection_state
"""
import sqlalchemy as sa
from alembic import op

revision = '0061_col_cursor_captures'
down_revision = '0060_col_collection_state'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('collection_cursor') as batch:
        batch.add_column(sa.Column('captures', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('capture_period', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('collection_cursor') as batch:
        batch.drop_column('capture_period')
        batch.drop_column('captures')
