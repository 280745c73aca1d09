"""tools: the evolution that made a tool, and a note on why it was rejected or retired

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER most things in place; PostgreSQL runs plain ALTERs
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evolution_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("evolution_id")
