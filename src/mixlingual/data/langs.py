"""Language-code validation.

Codes are BCP 47 tags built from ISO 639-1 / 639-3 language subtags with optional script and
region subtags (`en`, `zh-Hans`, `pt-BR`, `eng`, `zho_Hans` - underscores are accepted as in
NLLB/FLORES codes). Validity is decided by `langcodes`, which ships the IANA language subtag
registry, so the table stays maintained upstream instead of being copied here.
"""

from __future__ import annotations

from functools import lru_cache

import langcodes


@lru_cache(maxsize=4096)
def is_valid_language(code: str) -> bool:
    """True when `code` is a well-formed tag whose subtags are all registered."""
    if not isinstance(code, str) or not code or code != code.strip():
        return False
    try:
        return bool(langcodes.tag_is_valid(code.replace("_", "-")))
    except (ValueError, LookupError):
        return False


def language_problem(code) -> str | None:
    """None for a valid code, else a sentence saying what is wrong (for error messages)."""
    if not isinstance(code, str):
        return f"language code must be a string, got {type(code).__name__}"
    if is_valid_language(code):
        return None
    return (f"unknown language code {code!r} (expected an ISO 639-1/639-3 code with optional "
            "script/region, e.g. 'en', 'zh-Hans', 'pt-BR', 'eng_Latn')")
