"""contexts (what the knowledge layer remembers) and their searchable chunks

Each context has one or more chunks: a log's line spans, or one text for any other
context. A chunk carries its embedding and is indexed for full text: on
PostgreSQL a ``vector(256)`` column with an HNSW cosine index and a generated
``tsvector`` with a GIN index; on SQLite the vector as a float32 BLOB (scanned
with numpy, see devmesh/knowledge/vectors.py) and an FTS5 table kept in step by
triggers.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
# 0010 is another branch's; the merge rechains this onto it.
down_revision = "0010"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "contexts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("scope", sa.String(36), nullable=False),
        sa.Column("tool_id", sa.String(36), nullable=True),
        sa.Column("tool", sa.String(64), nullable=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("project", sa.String(255), nullable=True),
        sa.Column("status", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contexts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_contexts_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contexts")),
        sa.UniqueConstraint("tenant_id", "scope", "key", name=op.f("uq_contexts_tenant_id")),
    )
    op.create_index("ix_contexts_tenant_type", "contexts", ["tenant_id", "type", "updated_at"])
    op.create_index(op.f("ix_contexts_tool_id"), "contexts", ["tool_id"])
    op.create_table(
        "context_chunks",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("context_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("first_line", sa.Integer(), nullable=True),
        sa.Column("last_line", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(255), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["context_id"],
            ["contexts.id"],
            name=op.f("fk_context_chunks_context_id_contexts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_context_chunks")),
        # Ids are never reused: the embedded vector cache tells a changed store by
        # its chunk count and largest id, which a reused id could leave unchanged.
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_context_chunks_context_id"), "context_chunks", ["context_id"])
    op.create_index(op.f("ix_context_chunks_tenant_id"), "context_chunks", ["tenant_id"])
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        op.execute("ALTER TABLE context_chunks ADD COLUMN embedding vector(256) NOT NULL")
        op.execute(
            "ALTER TABLE context_chunks ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED"
        )
        op.execute("CREATE INDEX ix_context_chunks_tsv ON context_chunks USING gin (tsv)")
        op.execute(
            "CREATE INDEX ix_context_chunks_embedding ON context_chunks "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
    else:
        op.add_column("context_chunks", sa.Column("embedding", sa.LargeBinary(), nullable=False))
        op.execute(
            "CREATE VIRTUAL TABLE context_chunks_fts USING fts5("
            "text, content='context_chunks', content_rowid='id')"
        )
        # How many chunks hold each term: the search leaves out terms so common that
        # ranking every chunk holding them would cost more than they tell.
        op.execute(
            "CREATE VIRTUAL TABLE context_chunks_terms USING fts5vocab(context_chunks_fts, 'row')"
        )
        op.execute(
            "CREATE TRIGGER context_chunks_ai AFTER INSERT ON context_chunks BEGIN "
            "INSERT INTO context_chunks_fts(rowid, text) VALUES (new.id, new.text); END"
        )
        op.execute(
            "CREATE TRIGGER context_chunks_ad AFTER DELETE ON context_chunks BEGIN "
            "INSERT INTO context_chunks_fts(context_chunks_fts, rowid, text) "
            "VALUES ('delete', old.id, old.text); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS context_chunks_ad")
        op.execute("DROP TRIGGER IF EXISTS context_chunks_ai")
        op.execute("DROP TABLE IF EXISTS context_chunks_terms")
        op.execute("DROP TABLE IF EXISTS context_chunks_fts")
    op.drop_table("context_chunks")
    op.drop_index(op.f("ix_contexts_tool_id"), table_name="contexts")
    op.drop_index("ix_contexts_tenant_type", table_name="contexts")
    op.drop_table("contexts")
