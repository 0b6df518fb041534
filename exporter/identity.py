"""Which Grafana account is which Console member, decided by email and never by a guess.

Two emails are *the same* when they are equal once upper-case ASCII letters are made lower case:
`Dev@Example.com` is `dev@example.com`, but every other character must match code point for code
point. Two emails are *confusable* when they share a canonical key: Unicode NFKC, case folded, NFKC
again (folding can leave a string that is no longer in NFKC). Fullwidth letters, ligatures, the
Kelvin sign and non-ASCII case variants are confusable with their plain forms; a Cyrillic `а` is
not confusable with a Latin `a` (no normalization maps one to the other), so it never matches.

A Console member and a Grafana account belong together only when the member is the one Console
member and the account the one Grafana account under their canonical key, and their emails are the
same. Any other group of confusable emails is an `Ambiguity`: none of its accounts is matched to
anyone, whatever the members' roles, so that an account cannot receive another person's access by
spelling its email differently."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .grafana import GrafanaUser

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@dataclass(frozen=True)
class Member:
    """A Console member as the Admin API lists them."""

    email: str
    role: str


@dataclass(frozen=True)
class Ambiguity:
    """Confusable emails that cannot be told apart safely: none of `accounts` gets a match."""

    members: tuple[Member, ...]
    accounts: tuple[GrafanaUser, ...]

    @property
    def reason(self) -> str:
        reasons = []
        if len(self.accounts) > 1:
            reasons.append(f"{len(self.accounts)} Grafana accounts")
        if len(self.members) > 1:
            reasons.append(f"{len(self.members)} Console members")
        if reasons:
            return " and ".join(reasons) + " have confusable emails"
        return "the emails are equal only after Unicode normalization"


@dataclass(frozen=True)
class Match:
    """A member and the one Grafana account that is theirs, or None and maybe why not."""

    member: Member
    account: GrafanaUser | None
    ambiguity: Ambiguity | None = None


def canonical(email: str) -> str:
    """The key under which emails are confusable."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())


def same_email(a: str, b: str) -> bool:
    """Equal but for the case of ASCII letters."""
    return a.translate(_ASCII_LOWER) == b.translate(_ASCII_LOWER)


def match(
    members: Sequence[Member], accounts: Iterable[GrafanaUser]
) -> tuple[list[Match], list[Ambiguity]]:
    """Each member's account, in the members' order, and every ambiguity found on the way.

    Accounts without an email are left out: they cannot belong to anyone."""
    by_key: dict[str, list[GrafanaUser]] = {}
    for account in accounts:
        if account.email:
            by_key.setdefault(canonical(account.email), []).append(account)
    members_by_key: dict[str, list[Member]] = {}
    for member in members:
        members_by_key.setdefault(canonical(member.email), []).append(member)
    ambiguities: dict[str, Ambiguity] = {}
    matches = []
    for member in members:
        key = canonical(member.email)
        group, found = members_by_key[key], by_key.get(key, [])
        if len(group) == 1 and len(found) == 1 and same_email(member.email, found[0].email):
            matches.append(Match(member, found[0]))
        elif len(group) == 1 and not found:
            matches.append(Match(member, None))
        else:
            ambiguity = ambiguities.setdefault(key, Ambiguity(tuple(group), tuple(found)))
            matches.append(Match(member, None, ambiguity))
    return matches, list(ambiguities.values())
