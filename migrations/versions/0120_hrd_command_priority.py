"""command priority: an operator's command goes ahead of a customer's queued token entries on the same meter

Revision ID: 0120_hrd_command_priority
Revises: 0110_hrd_import_job
"""
import sqlalchemy as sa
from alembic import op

revision = '0120_hrd_command_priority'
down_revision = '0110_hrd_import_job'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('command', sa.Column('priority', sa.Integer(), server_default='50', nullable=False))


def downgrade():
    with op.batch_alter_table('command') as batch:
        batch.drop_column('priority')
