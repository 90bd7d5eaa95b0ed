"""Persistence: SQLAlchemy rows, the database handle and its migrations."""
