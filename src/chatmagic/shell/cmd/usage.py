"""``%chat_usage``: this session's requests, tokens and cost; ``--remote``: the account as
the endpoint reports it (balance, used, limit).

A function of (parsed arguments, session, the user's namespace) that returns what to show;
nothing here imports IPython.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import OptionError
from ...engine.session import Session
from .history import Outcome
from .models import account_table, usage_table

__all__ = ["run"]


def run(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    """Carry out one %chat_usage line (``--by``, ``--reset``, ``--remote``, ``-p``, ``-o``)."""
    if args.remote:
        return _remote(args, session, namespace)
    if args.profile:
        raise OptionError("-p goes with --remote (%chat_usage --remote -p PROFILE); "
                          "for this session's totals per profile: %chat_usage --by profile")
    ledger = session.usage
    rows = ledger.totals(args.by)
    if args.out:
        namespace[args.out] = rows
    if args.reset:
        ledger.rows.clear()
    return usage_table(rows, args.by)


def _remote(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    """``--remote``: ask the endpoint (see `chatmagic.money.account`)."""
    from ...money.account import remote_account

    profile = session.profiles.get(args.profile)
    account = remote_account(profile, session.clients)
    if args.out:
        namespace[args.out] = account.to_dict()
    return account_table(account)
