"""Differential test of the two manifest paths, on seeded mutations of real manifests.

The fast path (msgspec) may only *accept*; jsonschema decides everything else. So for every
mutated manifest:

- msgspec accepts it  =>  ``json`` parses it, jsonschema accepts it, and both paths build
  equal models with equal rule verdicts (bytes decoding and dict conversion alike);
- jsonschema accepts it  =>  msgspec accepts it too: the fast path is not stricter than the
  schema, so valid manifests do not fall to the slow path.

The generator is seeded: a failure names its seed and case, and replays the same way.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stonks_plugins.manifest.model import PluginManifest
from stonks_plugins.manifest.validation import (
    _fast_convert,
    _fast_document,
    _rule_issues,
    _slow_document,
)

ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = sorted(
    [
        *(ROOT / "tests" / "fixtures" / "plugins").glob("*/plugin_manifest.json"),
        *(ROOT / "plugins").glob("*/plugin_manifest.json"),
    ]
)
CASES_PER_SEED = 300


def _seeds() -> list[dict[str, Any]]:
    seeds = []
    for path in SEED_FILES:
        try:
            data = json.loads(path.read_text("utf-8"))
        except ValueError:
            continue  # the corpus's unreadable manifest
        if isinstance(data, dict):
            seeds.append(data)
    # One that uses every key the schema knows, so every constraint gets mutated.
    seeds.append(
        {
            "plugin": {
                "name": "all-keys",
                "version": "1.0.0rc1",
                "type": "view",
                "display_name": "All keys",
                "description": "d",
                "author": "a",
                "license": "MIT",
                "homepage": "http://x.example",
            },
            "api": {"min_version": "1.0", "max_version": "1.5.post1", "interfaces": ["I"]},
            "dependencies": {"python": ">=3.11", "plugins": {"base.plugin_1": "~=1.0"}},
            "capabilities": {
                "services": ["update", "authentication"],
                "features": ["f"],
                "supported_markets": ["XAMS"],
                "supported_currencies": ["EUR"],
            },
            "configuration": {
                "config_class": "pkg.Config",
                "required_credentials": ["token"],
                "optional_settings": ["o"],
                "schema": "config.schema.json",
                "version": 2,
            },
            "services": {"update": "pkg.services.Update"},
            "entry_points": {"main": "pkg.plugin:Plugin", "config": "pkg:Config"},
            "isolation": "in_process",
            "permissions": ["network:*.example.com:443", "read:data"],
            "integrity": {"pkg/__init__.py": "a" * 64},
        }
    )
    return seeds


# Values a mutation may put anywhere: each is valid somewhere and invalid elsewhere.
_STRINGS = [
    "",
    "x",
    "X",
    "portfolio",
    "teleport",
    "broker",
    "process",
    "1.0.0",
    "1.0.0\n",
    "2.0",
    "0.1",
    "1.0.0-not-pep-440",
    "one.two",
    "v1",
    ">=1.0",
    "~~1",
    "pkg.mod.Cls",
    "pkg.mod.Cls\n",
    "pkg",
    "pkg.mod:Cls",
    "pkg:",
    "acme-broker",
    "Acme",
    "a" * 64,
    "a" * 65,
    "0" * 64,
    "0" * 63,
    "http://x",
    "ftp://x",
    "x" * 100,
    "x" * 101,
    "x" * 200,
    "x" * 201,
    "\U0001f600" * 101,
    " 1.0",
    "x-note",
    "\u00e9",
]
_SCALARS: list[Any] = [None, True, False, 0, 1, -1, 1.5, 10**30, *_STRINGS]


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.7 or depth > 2:
        return rng.choice(_SCALARS)
    if roll < 0.85:
        items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        if items and rng.random() < 0.3:
            items.append(items[0])  # uniqueItems
        return items
    return {rng.choice(_STRINGS): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _nodes(v, (*path, i))


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def _mutate(data: dict[str, Any], rng: random.Random) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        nodes = list(_nodes(data))
        path, node = rng.choice(nodes)
        op = rng.randrange(9)
        if not path:
            if op == 0:
                return _value(rng)  # not an object at all
            op = 4
        if op in (1, 2) and path:  # replace the value
            _parent(data, path)[path[-1]] = _value(rng)
        elif op == 3 and path:  # delete the key / item
            del _parent(data, path)[path[-1]]
        elif op == 4 and isinstance(node, dict):  # add a key: known, unknown or x-
            keys = ["x-tool", "x-", "colour", "plugins", "python", "portfolio", "name", "schema"]
            key = rng.choice([*keys, *node])
            node[key] = _value(rng)
        elif op == 5 and isinstance(node, list):  # duplicate an item (uniqueItems)
            if node:
                node.append(copy.deepcopy(rng.choice(node)))
        elif op == 6 and isinstance(node, str):  # nudge a string
            node_new = rng.choice(
                [node + "\n", node.upper(), node[:-1], node + node, " " + node, node + "$"]
            )
            _parent(data, path)[path[-1]] = node_new
        elif op == 7 and isinstance(node, str) and len(path) >= 1:  # value of another key
            other = rng.choice([v for _, v in nodes if isinstance(v, str)])
            _parent(data, path)[path[-1]] = other
        elif op == 8 and isinstance(node, dict) and node:  # rename a key
            old = rng.choice(list(node))
            node[rng.choice(_STRINGS)] = node.pop(old)
    return data


def _slow(data: Any) -> PluginManifest | None:
    issues, doc = _slow_document(data)
    if doc is None:
        assert issues
        return None
    return PluginManifest.from_document(doc, raw=data)


@pytest.mark.parametrize("seed", range(len(_seeds())))
def test_fast_acceptance_implies_jsonschema_acceptance_and_the_same_model(seed: int) -> None:
    base = _seeds()[seed]
    rng = random.Random(1000 + seed)
    counts = {"fast": 0, "slow only": 0, "rejected": 0}
    for case in range(CASES_PER_SEED):
        data = _mutate(base, rng)
        text = json.dumps(data, indent=rng.choice((None, 2)))
        where = f"seed {seed}, case {case}: {text[:300]}"
        raw = json.loads(text)
        slow = _slow(raw)
        doc = _fast_document(text.encode())
        if doc is not None:
            fast = PluginManifest.from_document(doc, source=text.encode())
            assert slow is not None, f"msgspec accepted what jsonschema rejects ({where})"
            assert fast == slow, where
            assert fast.raw == raw, where
            assert _rule_issues(fast) == _rule_issues(slow), where
        converted = _fast_convert(raw)
        if converted is not None:
            assert slow is not None, f"msgspec.convert accepted what jsonschema rejects ({where})"
            assert PluginManifest.from_document(converted) == slow, where
        if slow is not None:
            assert doc is not None, f"valid, yet not on the fast path ({where})"
            assert converted is not None, where
        counts["fast" if doc is not None else "slow only" if slow else "rejected"] += 1
    # From a valid seed, the mutations must reach both verdicts, or the test proves nothing.
    if _slow(base) is not None:
        assert counts["fast"] > CASES_PER_SEED // 20, counts
        assert counts["rejected"] > CASES_PER_SEED // 20, counts


_VALID_TEXT = json.dumps(
    {
        "plugin": {"name": "acme", "version": "1.0.0", "type": "broker"},
        "api": {"min_version": "1.0.0"},
        "services": {"portfolio": "acme.services.Portfolio"},
    }
)


@pytest.mark.parametrize(
    "text",
    [
        _VALID_TEXT,
        _VALID_TEXT.replace('"acme"', '"acme", "name": "acme-2"'),  # duplicate key: last wins
        _VALID_TEXT.replace('"acme"', '"Bad!", "name": "acme"'),  # invalid, then valid
        _VALID_TEXT.replace('"acme"', '"acme", "name": "Bad!"'),  # valid, then invalid
        _VALID_TEXT.replace('"1.0.0"', '"1.0.0", "x-a": NaN', 1),
        _VALID_TEXT.replace('"acme"', '"acme\\ud800"'),  # lone surrogate
        _VALID_TEXT.replace('"acme"', '"ac\\u006de"'),  # escaped, valid
        _VALID_TEXT.replace('"acme"', '"ac\x01me"'),  # raw control character
        _VALID_TEXT.replace('"acme"', '"acme\\n"'),
        _VALID_TEXT[:-1] + ', "x-n": 1e400}',
        _VALID_TEXT[:-1] + ', "isolation": "process",}',  # trailing comma
        _VALID_TEXT + " ",
        " \n" + _VALID_TEXT,
        _VALID_TEXT + "x",
        "\ufeff" + _VALID_TEXT,
        "[" * 5000 + "]" * 5000,
        _VALID_TEXT[:-1] + ', "configuration": {"schema": ' + "[" * 3000 + "]" * 3000 + "}}",
    ],
)
def test_byte_level_oddities_never_disagree(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    doc = _fast_document(data)
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        assert doc is None
        return
    try:
        slow = _slow(raw)
    except RecursionError:
        slow = None
    if doc is not None:
        assert slow is not None
        assert PluginManifest.from_document(doc, source=data) == slow
