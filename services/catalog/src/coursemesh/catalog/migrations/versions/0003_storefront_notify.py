"""catalog: NOTIFY catalog_storefront after any write to a table the storefront reads

Revision ID: catalog_0003
Revises: catalog_0002
"""

from alembic import op

revision = "catalog_0003"
down_revision = "catalog_0002"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a function and triggers, no table changes

SCHEMA = "catalog"
# Same value as coursemesh.catalog.adapters.storefront_cache.STOREFRONT_CHANNEL. Written out
# rather than imported: this migration must keep creating what it created when it first ran, and
# a rename of the channel needs a new migration anyway (the old function stays in the database).
CHANNEL = "catalog_storefront"
# Every table STOREFRONT_SQL reads (adapters/storefront.py; test_storefront_cache checks that
# the two lists agree).
TABLES = (
    "programs",
    "course_configs",
    "organizations",
    "plan_projection",
    "course_items",
    "workouts",
)


def upgrade() -> None:
    # NOTIFY is sent at commit (never for a rollback) and identical notifications of one
    # transaction are merged, so a bulk write costs one invalidation per transaction.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.storefront_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            CREATE TRIGGER storefront_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {SCHEMA}.{table}
            FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.storefront_changed()
            """
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER storefront_changed ON {SCHEMA}.{table}")
    op.execute(f"DROP FUNCTION {SCHEMA}.storefront_changed()")
