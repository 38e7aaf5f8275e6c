"""per-user session epoch: sessions and tokens are revocable server-side

Revision ID: 0080_hrd_session_epoch
Revises: 0065_ops_comm_failures
"""
from alembic import op
import sqlalchemy as sa

revision = '0080_hrd_session_epoch'
down_revision = '0065_ops_comm_failures'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('hes_user_preference',
                  sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('hes_user_preference') as batch:
        batch.drop_column('session_epoch')
