"""Security profiles per charger: what a connection satisfies, and never a downgrade (pure).

OCPP 1.6 Security Whitepaper: profile 1 = HTTP Basic auth over ws, 2 = TLS + Basic auth,
3 = TLS + a client certificate (no password). Profile 0 (nothing) is what a charger has
before it is given a password: the edge's pre-security default, as in SteVe.

A charger has one stored profile at a time and only ever moves up (A00.FR.005,
A05.FR.09): a connection that does not meet its profile's transport is refused, however
good its password. It moves up through the Whitepaper's flow: ChangeConfiguration
(SecurityProfile) Accepted makes the higher profile *pending*; until the charger connects
at it, its current profile still serves (the charger falls back when the new one fails,
A05.FR.07); the first connection at the pending profile makes it the stored one, and the
lower one is refused from then on.

    level = connection_level(tls=True, certificate_names_charger=True)   # 3
    for profile in candidates(stored=2, pending=3, level=level):         # [3, 2]
        if not needs_password(profile) or password_ok: accept at profile
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PROFILES",
    "Refusal",
    "candidates",
    "certificate_names_charger",
    "connection_level",
    "effective_profile",
    "needs_password",
    "refusal_for",
    "upgrade_problems",
]

PROFILES = (0, 1, 2, 3)


def connection_level(*, tls: bool, certificate_names_charger: bool) -> int:
    """The highest profile a connection's transport can serve: 1 over ws, 2 over TLS,
    3 over TLS with a verified client certificate that names the charger."""
    if not tls:
        return 1
    return 3 if certificate_names_charger else 2


def certificate_names_charger(
    common_name: str, identity: str, serial_numbers: tuple[str | None, ...], *, relaxed: bool
) -> bool:
    """Whether a client certificate's subject CN designates this charger: its identity or
    a serial number it reported at boot (the Whitepaper says serial number).

    `relaxed` (`[security] relaxed_subject_checks`) accepts any CN: test tools such as OCTT
    issue certificates whose subject names neither (OCTT quirk 2).
    """
    if relaxed:
        return True
    if not common_name:
        return False
    return common_name == identity or common_name in {s for s in serial_numbers if s}


def effective_profile(stored: int, configured: int, has_password: bool) -> int:
    """The profile a charger must connect at: the highest of the stored one, the
    configured one (the starting level; never lowers a stored one) and 1 when it has a
    password (the edge then asks for Basic auth, as it always has)."""
    return max(stored, configured, 1 if has_password else 0)


def _transport_ok(profile: int, level: int) -> bool:
    if profile <= 1:
        return True
    if profile == 2:
        return level >= 2
    return level == 3


def needs_password(profile: int) -> bool:
    """Profiles 1 and 2 authenticate with HTTP Basic; 0 with nothing, 3 with the certificate."""
    return profile in (1, 2)


def candidates(stored: int, pending: int | None, level: int) -> list[int]:
    """The profiles, best first, whose transport a connection at `level` meets: the
    pending one (its first use completes the upgrade), then the stored one."""
    found = []
    if pending is not None and pending > stored and _transport_ok(pending, level):
        found.append(pending)
    if _transport_ok(stored, level):
        found.append(stored)
    return found


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection is refused: `kind` is "downgrade" (transport or certificate below
    the charger's profile) or "credentials"; `text` is safe to log and to answer."""

    kind: str
    text: str


def refusal_for(stored: int, level: int, *, tls: bool, has_certificate: bool) -> Refusal:
    """The refusal of a connection that meets no candidate profile."""
    if not tls:
        return Refusal("downgrade", f"security profile {stored} requires TLS (wss)")
    if stored == 3 and has_certificate:
        return Refusal(
            "certificate", "security profile 3: the client certificate does not name this charger"
        )
    return Refusal("downgrade", f"security profile {stored} requires a client certificate")


def upgrade_problems(
    current: int,
    value: str,
    *,
    tls_listener: bool,
    client_ca: bool,
    has_password: bool,
) -> list[tuple[str, str]]:
    """What is wrong with sending ChangeConfiguration(SecurityProfile = value) to a charger
    at `current`, as (severity, message)."""
    try:
        target = int(value)
    except ValueError:
        return [("error", "SecurityProfile must be 1, 2 or 3")]
    if target not in (1, 2, 3):
        return [("error", "SecurityProfile must be 1, 2 or 3")]
    if target <= current:
        return [
            (
                "error",
                f"the charger is at security profile {current}; a profile is never lowered "
                "(Security Whitepaper A00.FR.005)",
            )
        ]
    problems: list[tuple[str, str]] = []
    if target > current + 1:
        problems.append(("warning", "the Whitepaper raises the profile one level at a time"))
    if target >= 2 and not tls_listener:
        problems.append(
            ("error", "no [ocpp.tls] listener: the charger could not reconnect at profile 2 or 3")
        )
    if target == 3 and not client_ca:
        problems.append(
            ("error", "no client CA (no [ocpp.tls] client_ca and no site CA): profile 3 needs one")
        )
    if target in (1, 2) and not has_password:
        problems.append(
            (
                "error",
                "the charger has no password; set one (AuthorizationKey) before profile 1 or 2",
            )
        )
    return problems
