"""feedback: category, suggestion and whether an admin gave it; labels: the users a canary
always serves; executions: how novel the objective was for its tenant

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("suggestion", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("from_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.JSON(), nullable=True))
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("novelty", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("novelty")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_column("audience")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("from_admin")
        batch_op.drop_column("suggestion")
        batch_op.drop_column("category")
