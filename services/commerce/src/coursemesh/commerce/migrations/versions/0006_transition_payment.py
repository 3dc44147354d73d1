"""commerce: each entitlement transition names the payment it is about

``entitlement_transitions.payment_transaction_id``: the payment a paid checkout opened, the
payment whose outcome (completed, failed, refunded, disputed) the provider reported, or the open
payment of a checkout the sweeper expired. Rows written before stay null; the previous release
writes its rows without it, which the access history shows as "no payment".

Revision ID: commerce_0006
Revises: commerce_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "commerce_0006"
down_revision = "commerce_0005"
branch_labels = None
depends_on = None
compatible_with_previous = True  # expand: a nullable column


def upgrade() -> None:
    op.add_column(
        "entitlement_transitions",
        sa.Column("payment_transaction_id", sa.UUID(), nullable=True),
        schema="commerce",
    )


def downgrade() -> None:
    op.drop_column("entitlement_transitions", "payment_transaction_id", schema="commerce")
