"""exchange budget: the account's request budget, shared by every process that signs

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

BitUnix limits requests per endpoint per account (docs/bitunix.md#rate-limits). Each process
used to hold a share of that limit of its own, so a second worker doubled the account's rate.
Now every process leases slots from one row per endpoint (docs/design.md#request-budgets):
`exchange_budget.ends` holds, newest first, when the last `capacity` leased slots may be used
until, and `exchange_budget_lease` grants slots under that row's lock in one statement, so two
processes never count the same slot.

A slot is an interval [start, end] (a lease of `lease_s`) in which its holder sends one request.
The rule that keeps any `window_s` with at most `capacity` sends whatever the holders do inside
their intervals: `k` slots may start at `start` only when at most `capacity - k` earlier slots
end after `start - window_s`. When none is free now, one slot is granted at the earliest time
the rule allows, and the caller waits for it (a slot not granted is waited for, never dropped).
The clock is the database's (`clock_timestamp()`), the one clock every process shares;
`p_now` replaces it only in tests.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LEASE_FUNCTION = """
CREATE FUNCTION exchange_budget_lease(
    p_endpoint text, p_capacity integer, p_window_s double precision,
    p_lease_s double precision, p_want integer, p_now double precision DEFAULT NULL)
RETURNS TABLE (granted integer, start_at double precision, end_at double precision,
               now_at double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_ends double precision[];
    v_now double precision;
    v_busy integer;
    v_k integer;
    v_start double precision;
BEGIN
    SELECT b.ends INTO v_ends FROM exchange_budget b WHERE b.endpoint = p_endpoint FOR UPDATE;
    IF NOT FOUND THEN  -- the endpoint's first lease (or two processes' at once)
        INSERT INTO exchange_budget (endpoint) VALUES (p_endpoint)
            ON CONFLICT (endpoint) DO NOTHING;
        SELECT b.ends INTO v_ends FROM exchange_budget b WHERE b.endpoint = p_endpoint FOR UPDATE;
    END IF;
    -- Read the clock once the row is ours: a grant is never dated before the one it waited for.
    v_now := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    SELECT count(*) INTO v_busy FROM unnest(v_ends) e WHERE e > v_now - p_window_s;
    IF v_busy < p_capacity THEN
        v_k := least(greatest(p_want, 1), p_capacity - v_busy);
        v_start := v_now;
    ELSE
        -- v_ends is newest first: the capacity-th slot's end frees the next slot.
        v_k := 1;
        v_start := v_ends[p_capacity] + p_window_s;
    END IF;
    UPDATE exchange_budget SET ends = ARRAY(
        SELECT e FROM unnest(v_ends || array_fill(v_start + p_lease_s, ARRAY[v_k])) e
        ORDER BY e DESC LIMIT p_capacity)
    WHERE endpoint = p_endpoint;
    RETURN QUERY SELECT v_k, v_start, v_start + p_lease_s, v_now;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "exchange_budget",
        sa.Column("endpoint", sa.Text(), primary_key=True),
        sa.Column("ends", ARRAY(sa.Float(precision=53)), nullable=False, server_default="{}"),
        # Nothing here outlives a second: no WAL for it. A crash empties the table, and the
        # slots it held ended long before the database is back.
        prefixes=["UNLOGGED"],
    )
    op.execute(LEASE_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION exchange_budget_lease(text, integer, double precision, "
               "double precision, integer, double precision)")
    op.drop_table("exchange_budget")
