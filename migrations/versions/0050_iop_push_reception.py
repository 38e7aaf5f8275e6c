"""push reception: meter system titles, push counters and policy, kept failed pushes

Revision ID: 0050_iop_push_reception
Revises: 0040_energy_quarter
"""
from alembic import op
import sqlalchemy as sa

import app.models.types  # noqa: F401  (custom column types used below)

revision = '0050_iop_push_reception'
down_revision = '0040_energy_quarter'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('meter') as batch:
        batch.add_column(sa.Column('system_title', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('push_invocation_counter', sa.BigInteger(), server_default='0', nullable=False))
        batch.create_unique_constraint('uq_meter_system_title', ['system_title'])
    with op.batch_alter_table('meter_brand') as batch:
        batch.add_column(sa.Column('push_policy', sa.Enum('auto', 'plain', 'authenticated', name='push_policy',
                                                          native_enum=False, length=24),
                                   server_default='auto', nullable=False))
    with op.batch_alter_table('comms_node') as batch:
        batch.add_column(sa.Column('push_listen', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('counters', sa.JSON(), nullable=True))
    with op.batch_alter_table('unregistered_connection') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), server_default='dial_in', nullable=False))
        batch.add_column(sa.Column('system_title', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('pushes', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('last_push', sa.Text(), nullable=True))
    op.create_table(
        'push_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('received_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('node_id', sa.String(length=64), nullable=True),
        sa.Column('remote_addr', sa.String(length=64), nullable=True),
        sa.Column('port', sa.String(length=16), nullable=True),
        sa.Column('meter_id', sa.Integer(), nullable=True),
        sa.Column('identity', sa.String(length=64), nullable=True),
        sa.Column('category', sa.String(length=24), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('frame', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['meter_id'], ['meter.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_push_failure_received_at', 'push_failure', ['received_at'])
    op.create_index('ix_push_failure_meter_id', 'push_failure', ['meter_id'])


def downgrade():
    op.drop_index('ix_push_failure_meter_id', table_name='push_failure')
    op.drop_index('ix_push_failure_received_at', table_name='push_failure')
    op.drop_table('push_failure')
    with op.batch_alter_table('unregistered_connection') as batch:
        for column in ('last_push', 'pushes', 'system_title', 'kind'):
            batch.drop_column(column)
    with op.batch_alter_table('comms_node') as batch:
        batch.drop_column('counters')
        batch.drop_column('push_listen')
    with op.batch_alter_table('meter_brand') as batch:
        batch.drop_column('push_policy')
    with op.batch_alter_table('meter') as batch:
        batch.drop_constraint('uq_meter_system_title', type_='unique')
        batch.drop_column('push_invocation_counter')
        batch.drop_column('system_title')
