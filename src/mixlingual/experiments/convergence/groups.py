"""Language groups for convergence reports: given on the command line, or derived from training data.

Given: `--language-groups "both-sides=de,es,vi,zh;questions-only=ar,hi;unseen=el,en,ru,th,tr"` -
groups separated by ';', each `NAME=LANG,LANG,...`, in the order they should be reported.
Evaluated languages the spec does not name go to a last group `other`.

Derived (the default): from the (query -> passage) language pairs each run drew
(`batch_counts.json`, key `pairs`, e.g. {"ar->de": 12}), pooled over all runs so that every
recipe is reported on the same groups:

* `passages`     - the language was the passage side of at least one drawn pair (whether or not
                   it was also a query language);
* `queries-only` - it was a query side, never a passage side;
* `unseen`       - it was never drawn (an evaluation language absent from the training data).

Runs without any `batch_counts.json` give no evidence: then all languages form one group `all`.
"""

from __future__ import annotations

import re

from mixlingual.errors import ConfigError

DERIVED_GROUPS = ("passages", "queries-only", "unseen")
OTHER_GROUP = "other"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def parse_language_groups(spec: str, option: str = "--language-groups") -> dict[str, list[str]]:
    """'NAME=l1,l2;NAME2=l3' -> {NAME: [l1, l2], NAME2: [l3]}; errors name `option` and the bad part."""
    groups: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        raise ConfigError(f"{option}: empty; expected 'NAME=LANG,LANG;NAME=LANG,...'")
    for part in parts:
        name, eq, langs_text = (x.strip() for x in part.partition("="))
        if not eq:
            raise ConfigError(f"{option}: group '{part}' has no '='; expected 'NAME=LANG,LANG,...'")
        if not _NAME.match(name):
            raise ConfigError(f"{option}: bad group name '{name}' in '{part}' (letters, digits, '_.+-')")
        if name in groups:
            raise ConfigError(f"{option}: group '{name}' is given twice")
        langs = [x.strip() for x in langs_text.split(",") if x.strip()]
        if not langs:
            raise ConfigError(f"{option}: group '{name}' lists no languages")
        for lang in langs:
            if lang in owner:
                raise ConfigError(f"{option}: language '{lang}' is in both '{owner[lang]}' and '{name}'")
            owner[lang] = name
        groups[name] = langs
    return groups


def complete_groups(groups: dict[str, list[str]], langs: list[str]) -> dict[str, list[str]]:
    """Keep the evaluated languages of each group (sorted), add `other` for the unnamed ones, drop empty groups."""
    named = {lang for members in groups.values() for lang in members}
    out = {name: sorted(set(members) & set(langs)) for name, members in groups.items()}
    out[OTHER_GROUP] = sorted(set(out.get(OTHER_GROUP, [])) | (set(langs) - named))
    return {name: members for name, members in out.items() if members}


def derive_language_groups(pairs_by_run: list[dict[str, int]], langs: list[str]) -> dict[str, list[str]]:
    """Groups of `langs` by how they occur in the runs' drawn pairs (see the module docstring)."""
    queries, passages = set(), set()
    for pairs in pairs_by_run:
        for pair, count in pairs.items():
            query, _, passage = pair.partition("->")
            if count and passage:
                queries.add(query)
                passages.add(passage)
    if not queries and not passages:
        return {"all": sorted(langs)} if langs else {}
    members = {"passages": [x for x in langs if x in passages],
               "queries-only": [x for x in langs if x in queries and x not in passages],
               "unseen": [x for x in langs if x not in queries and x not in passages]}
    return {name: sorted(members[name]) for name in DERIVED_GROUPS if members[name]}


def language_groups(pairs_by_run: list[dict[str, int]], langs: list[str], spec: str | None = None,
                    low_resource: list[str] | None = None) -> tuple[dict[str, list[str]], str]:
    """(groups, where they came from): `spec` if given, else the `low_resource` shorthand, else derived."""
    if spec:
        return complete_groups(parse_language_groups(spec), langs), "--language-groups"
    if low_resource:
        return complete_groups({"low-resource": list(low_resource)}, langs), "--low-resource"
    derived = derive_language_groups(pairs_by_run, langs)
    return derived, "batch_counts.json" if "all" not in derived else "none (no batch_counts.json pairs)"
