"""The drill's verification query, run so that it can prove something and harm nothing.

The query comes from the command line or the config, so it is treated as hostile:
- it runs as a role the drill creates in the promoted copy for this one drill, without superuser
  rights (no COPY ... TO PROGRAM, no server files, no untrusted extensions), that may read every
  table (pg_read_all_data);
- it reaches the server as a string literal passed to a function that runs it as a subquery, in
  a read-only transaction (the role's session default, set in the connection, and the function
  cannot COMMIT): it is never seen by psql's meta-command parser (`\\!`, `\\connect`), and
  `;` cannot start a second statement outside the function;
- psql and the restored server run without the Barman user's libpq credentials (.pgpass,
  service files, PGPASSWORD), so nothing in the copy can log in to the live server with them.

`verified` is true only when the query ran and returned at least one row.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from dr_console.core.restored import RestoredError, RestoredInstance

# Rows looked at (and counted) at most, and how much of them is kept for the report.
_MAX_ROWS = 100
_SHOWN_CHARS = 300
_ROLE_RE = re.compile(r"drconsole_verify_[0-9a-f]{8}")


class VerifyRefused(Exception):
    """The verification query cannot run as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Verification:
    ran: bool
    rows: int
    result: str  # the first rows as psql's unaligned output shows them, or the error

    @property
    def verified(self) -> bool:
        return self.ran and self.rows > 0


def check_verify_sql(sql: str) -> str:
    """The query as given, or VerifyRefused for one that cannot be passed as data."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise VerifyRefused("the verification query is empty")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise VerifyRefused("the verification query contains control characters")
    if len(text) > 10_000:
        raise VerifyRefused("the verification query is longer than 10000 characters")
    return text


def _literal(text: str) -> str:
    """A dollar-quoted literal with a tag the text does not contain."""
    while True:
        tag = f"$v{secrets.token_hex(6)}$"
        if tag not in text:
            return f"{tag}{text}{tag}"


def setup_sql(role: str) -> str:
    """Run as the copy's superuser: the role and its function, both new for this drill."""
    if not _ROLE_RE.fullmatch(role):
        raise RestoredError(f"verification role {role!r} has an unexpected form")
    # Each row as psql's unaligned output shows it: values joined by |, NULL as empty.
    row_text = (
        "(select string_agg(coalesce(c.value, ''''), ''|'' order by c.i) "
        "from json_each_text(row_to_json(t)) with ordinality as c(key, value, i))"
    )
    body = (
        "begin return query execute format("
        f"'select count(*), left(coalesce(string_agg({row_text}, chr(10)), ''''), "
        f"{_SHOWN_CHARS}) from (select * from (%s) as q limit {_MAX_ROWS}) as t', q); end"
    )
    return (
        f"create role {role} login nosuperuser nocreatedb nocreaterole noreplication "
        "nobypassrls connection limit 1; "
        f"grant pg_read_all_data to {role}; "
        f"create schema {role}; "
        f"create function {role}.run(q text) returns table(n bigint, sample text) "
        f"language plpgsql security invoker as {_literal(body)}; "
        f"revoke all on function {role}.run(text) from public; "
        f"grant usage on schema {role} to {role}; "
        f"grant execute on function {role}.run(text) to {role}"
    )


async def run_verification(
    superuser: RestoredInstance, sql: str, timeout: float, builtin: bool = False
) -> Verification:
    """Create the role in the promoted copy, then run the query as that role.

    `builtin` is drconsole's own fixed query: in a copy paused in recovery (read-only, so no role
    can be created) it runs as the superuser that started the copy.
    """
    text = check_verify_sql(sql)
    state = await superuser.state(timeout)
    if state.in_recovery and builtin:
        try:
            out = await superuser.query(text, timeout)
        except RestoredError as exc:
            return Verification(ran=False, rows=0, result=f"error: {exc}")
        return Verification(ran=True, rows=len(out.splitlines()), result=out[:_SHOWN_CHARS])
    if state.in_recovery:
        raise VerifyRefused(
            "the copy is still in recovery (paused at the target), so the role without "
            "superuser rights that runs the verification query cannot be created in it: "
            "use --target-action promote"
        )
    role = f"drconsole_verify_{secrets.token_hex(4)}"
    await superuser.query(setup_sql(role), timeout)
    verifier = replace(superuser, user=role, read_only=True)
    try:
        out = await verifier.query(f"select n, sample from {role}.run({_literal(text)})", timeout)
    except RestoredError as exc:
        return Verification(ran=False, rows=0, result=f"error: {exc}")
    count, _, sample = out.partition("|")
    if not count.isdigit():
        return Verification(ran=False, rows=0, result=f"error: unexpected answer {out[:200]!r}")
    return Verification(ran=True, rows=int(count), result=sample)
