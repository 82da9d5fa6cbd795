"""Hypothesis strategies of hostile text, shared by the backend's and the workers' property tests.

Every value drawn from :func:`hostile_names` is unusable as any ktrdr name (ktrdr.names), by
construction: it holds a control, formatting or other forbidden character, a lone surrogate, a
backslash, a ``%`` escape, a ``..`` path segment, or it is absolute, empty or too long. So a server
must refuse every one of them with 400 INVALID_NAME, whatever the field. Free text and JSON
values a store cannot take (:func:`hostile_text`, :func:`non_finite_numbers`) get a 422.

Profiles: ``hostile`` (the default, sized for the suite's time budget) and ``hostile-thorough``
(``KTRDR_HOSTILE_PROFILE=hostile-thorough uv run pytest -k hostile`` for a long hunt).
"""

from __future__ import annotations

import math
import os
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "hostile",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("hostile-thorough", parent=settings.get_profile("hostile"), max_examples=400)
HOSTILE = settings.get_profile(os.environ.get("KTRDR_HOSTILE_PROFILE", "hostile"))

# Characters no name may hold: controls (NUL, newline, DEL, C1), formatting (bidi overrides,
# zero-width), private use, line and paragraph separators; surrogates only where text can carry
# them (JSON strings: URLs are UTF-8, so a lone surrogate cannot be percent-encoded at all).
_FORBIDDEN = ["Cc", "Cf", "Co", "Zl", "Zp"]
# Hostile wherever they stand in a value ("../" only at the start: "ab../c" is a plain segment).
_TRAVERSAL = [
    "/../",
    "\\",
    "..\\..\\",
    "%2e%2e%2f",
    "%2E%2E/",
    "%00",
    "%252e%252e",
    "%5c",
    "\x00",
    "\r\n",
]
_SAFE = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=8)


def hostile_names(*, surrogates: bool = True, max_length: int = 600) -> st.SearchStrategy[str]:
    """Text that no ktrdr name rule accepts; ``surrogates=False`` for values sent inside a URL."""
    categories = _FORBIDDEN + (["Cs"] if surrogates else [])
    piece = st.one_of(st.characters(categories=categories), st.sampled_from(_TRAVERSAL))
    embedded = st.builds(lambda a, bad, b: a + bad + b, _SAFE | st.just(""), piece, _SAFE | st.just(""))
    absolute = st.builds(lambda rest: "/" + rest, _SAFE)
    upwards = st.builds(lambda rest: "../" + rest, _SAFE | st.just(""))
    too_long = st.integers(min_value=max_length + 1, max_value=max_length + 64).map(lambda n: "a" * n)
    return st.one_of(embedded, absolute, upwards, too_long, st.just(""))


def hostile_text() -> st.SearchStrategy[str]:
    """Free text a database or a JSON response cannot take: a NUL byte or a lone surrogate in it."""
    bad = st.sampled_from(["\x00"]) | st.characters(categories=["Cs"])
    return st.builds(lambda a, b, c: a + b + c, st.text(max_size=8), bad, st.text(max_size=8))


def non_finite_numbers() -> st.SearchStrategy[float]:
    """Numbers JSON has no spelling for: Python's json writes and reads them as NaN, Infinity and
    -Infinity, and PostgreSQL's JSON type refuses them (a 500 if one reached the store)."""
    return st.sampled_from([math.nan, math.inf, -math.inf])


def unstorable_json_values() -> st.SearchStrategy[object]:
    """A value inside a JSON object that no store or response may take: hostile text or a
    non-finite number, alone or nested in a list or an object."""
    leaf = hostile_text() | non_finite_numbers()
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, min_size=1, max_size=2) | st.dictionaries(st.just("k"), inner, min_size=1)
        ),
        max_leaves=3,
    )


def in_url(value: str) -> str:
    """``value`` as one percent-encoded URL path segment: every reserved byte escaped, and the dots
    too, or the client would resolve a ``..`` segment itself before sending."""
    return quote(value, safe="").replace(".", "%2E")


# Where hostile text can stand in the bundled strategy document: the values that name something
# (the strategy, an indicator id, the symbol) and one that is free text (the description). Each
# is the line that starts with the prefix, and what replaces it.
STRATEGY_SPOTS = {
    "name": ("name: ", "name: {}"),
    "indicator id": ("  rsi_14: {type: rsi", "  {}: {{type: rsi, period: 14}}"),
    "symbol": ("  symbol: ", "  symbol: {}"),
    "description": ("description: ", "description: {}"),
}


def yaml_quoted(value: str) -> str:
    """``value`` as a YAML double-quoted scalar that parses back to exactly ``value``: everything but
    printable ASCII escaped (``\\uXXXX``, ``\\UXXXXXXXX``), so a lone surrogate or a NUL arrives as an
    escape, the way an attacker would send it."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def strategy_with(spot: str, value: str) -> str:
    """The bundled strategy with ``value`` (:func:`yaml_quoted`) at ``spot``."""
    from ktrdr.strategy.loader import bundled_strategies_dir

    prefix, template = STRATEGY_SPOTS[spot]
    lines = (bundled_strategies_dir() / "rsi_macd_trend.yaml").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(prefix))
    lines[at] = template.format(yaml_quoted(value))
    return "\n".join(lines) + "\n"
