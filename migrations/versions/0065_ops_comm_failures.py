"""dial-out health: failed sessions in a row per meter; the node running a sent command

Revision ID: 0065_ops_comm_failures
Revises: 0070_brd_brand_versions_trace
"""
from alembic import op
import sqlalchemy as sa

revision = '0065_ops_comm_failures'
down_revision = '0070_brd_brand_versions_trace'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('meter') as batch:
        batch.add_column(sa.Column('comm_failures', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('command') as batch:
        batch.add_column(sa.Column('node_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('meter') as batch:
        batch.drop_column('comm_failures')
    with op.batch_alter_table('command') as batch:
        batch.drop_column('node_id')
