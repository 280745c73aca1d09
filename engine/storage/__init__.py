"""Persistence: SQLAlchemy async models, Alembic migrations, tenant-scoped repository."""
