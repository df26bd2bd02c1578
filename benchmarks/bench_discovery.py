"""Discovery benchmark: N generated directory plugins, cold and warm, against a floor.

Why a floor: absolute times depend on the machine, so every figure is divided by the cost,
measured in the same run on the same files, of merely reading each ``plugin_manifest.json``
and parsing it, keeping what was parsed (discovery must keep what it found; a loop that
drops each result reuses the same warm memory a thousand times). Both floors read the files
as discovery does (``os.open``/``os.read``, cheaper than ``open().read()``), so a faster
read earns discovery nothing:

- ``floor``          read every manifest and ``json.loads`` it: the issue's floor of "reading
                     and parsing", and the one the targets are checked against;
- ``floor-msgspec``  read and ``msgspec.json.decode`` to plain dicts (untyped: a parse, no
                     validation), shown as ``x msgspec`` for reference: discovery's typed
                     decode *and* validation against the fastest bare parse there is;
- ``cold``           ``discover([dir], entry_points=False)`` after ``clear_cache()`` (which
                     also forgets every memoised verdict): list the folder, open, stat, read,
                     decode and validate (msgspec typed decode into the model with its
                     checks, the extra rules), check compatibility, resolve duplicates, keep
                     candidates and caches;
- ``warm``           ``discover`` again with nothing changed: one stat per manifest;
- ``jsonschema``     reference only: read + ``json.loads`` + ``Draft7Validator.validate``
                     per manifest (validator built once) - discovery with plain jsonschema.

Targets (from the issue): cold <= 1.5x floor, warm <= 0.3x floor. The entry-point scan
(installed distributions) is measured on its own: it does not grow with the plugin folders.

Run:  .venv/bin/python benchmarks/bench_discovery.py [--n 1000] [--repeat 7] [--check]
Exit status is 0 unless ``--check`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MANIFEST = "plugin_manifest.json"
TARGETS = {"cold": 1.5, "warm": 0.3}

_WORDS = [
    "degiro",
    "alpaca",
    "bitvavo",
    "ibkr",
    "kraken",
    "trading212",
    "saxo",
    "etoro",
    "revolut",
    "bux",
    "lynx",
    "flatex",
    "comdirect",
    "scalable",
    "trade-republic",
    "coinbase",
    "binance",
    "bunq",
    "abn-amro",
    "ing",
    "rabobank",
    "schwab",
    "fidelity",
    "vanguard",
    "robinhood",
]
_SERVICES = ("portfolio", "transaction", "deposit", "dividend", "fee", "account")
_FEATURES = ("real_time_data", "historical_data", "order_execution", "csv_import", "2fa")
_MARKETS = ("XAMS", "XNYS", "XNAS", "XETR", "XLON", "XPAR", "XBRU", "XMIL")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "JPY")
_INTERFACES = (
    "BrokerServiceInterface",
    "PortfolioServiceInterface",
    "TransactionServiceInterface",
    "DepositServiceInterface",
    "DividendServiceInterface",
    "FeeServiceInterface",
    "AccountServiceInterface",
)


def make_manifest(i: int, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """A realistic manifest modelled on plugins/degiro-broker: returns (name, package, data)."""
    word = _WORDS[i % len(_WORDS)]
    name = f"{word}-broker-{i:04d}"
    pkg = f"{word.replace('-', '_')}_{i:04d}"
    cls = "".join(p.capitalize() for p in word.split("-")) + f"{i:04d}"
    services = sorted(rng.sample(_SERVICES, rng.randint(2, len(_SERVICES))), key=_SERVICES.index)
    data: dict[str, Any] = {
        "plugin": {
            "name": name,
            "version": f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            "type": "broker",
            "display_name": f"{word.replace('-', ' ').title()} Broker Plugin #{i}",
            "description": f"{word} broker integration for Stonks Overwatch (generated #{i})",
            "author": rng.choice(("Stonks Overwatch Team", "Jane Doe", "ACME Finance B.V.")),
            "license": rng.choice(("MIT", "Apache-2.0", "BSD-3-Clause")),
            "homepage": f"https://github.com/example/{name}",
        },
        "api": {
            "min_version": "1.0.0",
            "max_version": rng.choice(("1.9.0", "2.0.0")),
            "interfaces": ["BrokerServiceInterface", *rng.sample(_INTERFACES[1:], 3)],
        },
        "dependencies": {
            "python": ">=3.11",
            "stonks-overwatch-core": ">=2.0.0,<3.0.0",
        },
        "capabilities": {
            "services": services,
            "features": rng.sample(_FEATURES, rng.randint(1, 3)),
            "supported_markets": rng.sample(_MARKETS, rng.randint(1, 4)),
            "supported_currencies": rng.sample(_CURRENCIES, rng.randint(1, 3)),
        },
        "configuration": {
            "config_class": f"{pkg}.config.{cls}Config",
            "required_credentials": ["username", "password"][: rng.randint(1, 2)],
            "optional_settings": ["use_2fa", "session_timeout"],
        },
        "services": {s: f"{pkg}.services.{s.capitalize()}Service" for s in services},
        "entry_points": {
            "main": f"{pkg}.plugin:{cls}Plugin",
            "config": f"{pkg}.config:{cls}Config",
        },
    }
    if i % 10 == 3:  # a tenth also depend on another plugin, as some real ones do
        data["dependencies"]["plugins"] = {f"{_WORDS[0]}-broker-0000": ">=0.1"}
    return name, pkg, data


def generate_plugins(base: Path, n: int, *, with_code: bool = False, seed: int = 42) -> list[str]:
    """Write ``n`` plugin folders under ``base``; returns their top-level package names.

    With ``with_code`` each folder also ships its package (``__init__``, ``config``,
    ``services``, ``plugin``) so a test can prove none of it is imported.
    """
    rng = random.Random(seed)
    base.mkdir(parents=True, exist_ok=True)
    packages = []
    for i in range(n):
        name, pkg, data = make_manifest(i, rng)
        folder = base / name
        folder.mkdir()
        (folder / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", "utf-8")
        packages.append(pkg)
        if with_code:
            code = folder / pkg
            code.mkdir()
            for mod in ("__init__", "config", "services", "plugin"):
                # Harmless on purpose: an import must leave the module in sys.modules,
                # where the start-up benchmark looks for it.
                (code / f"{mod}.py").write_text(
                    f'"""Generated benchmark plugin module {pkg}.{mod}."""\n\nIMPORTED = True\n',
                    "utf-8",
                )
    return packages


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
    import django

    django.setup()


def _time(fn: Callable[[], Any], setup: Callable[[], Any] | None = None) -> float:
    """Seconds ``fn`` takes, after ``setup`` (untimed) and a full garbage collection, so no
    case pays for the garbage of the one before."""
    if setup is not None:
        setup()
    gc.collect()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    del result  # freeing what a case built is not part of its time
    return elapsed


def run(n: int, repeat: int, workdir: Path | None) -> dict[str, Any]:
    import jsonschema
    import msgspec

    from stonks_plugins.discovery import discover
    from stonks_plugins.discovery.directories import clear_cache, read_file
    from stonks_plugins.discovery.entry_points import scan_entry_points
    from stonks_plugins.manifest.validation import manifest_schema

    tmp = Path(tempfile.mkdtemp(prefix="stonks-bench-discovery-", dir=workdir))
    try:
        base = tmp / "plugins"
        t0 = time.perf_counter()
        generate_plugins(base, n)
        gen_s = time.perf_counter() - t0
        paths = sorted(str(p / MANIFEST) for p in base.iterdir())
        validator = jsonschema.Draft7Validator(manifest_schema())

        # The floors read each file as discovery does (read_file: os.open/os.read, cheaper
        # than open().read()), so the ratios do not credit discovery for a faster read, and
        # keep what they parsed, as discovery must: a loop that drops each result reuses
        # the same warm memory a thousand times, which no discovery can.
        def floor() -> list[Any]:
            return [json.loads(read_file(p)) for p in paths]

        decode = msgspec.json.decode

        def floor_msgspec() -> list[Any]:
            return [decode(read_file(p)) for p in paths]

        def plain_jsonschema() -> list[Any]:
            kept = []
            for p in paths:
                data = json.loads(read_file(p))
                validator.validate(data)
                kept.append(data)
            return kept

        def cold() -> Any:
            result = discover([base], entry_points=False)
            assert len(result.plugins) == n, len(result.plugins)
            return result

        def warm() -> Any:
            return discover([base], entry_points=False)

        # Untimed warm-up: imports (msgspec, packaging), OS page cache, core version.
        floor()
        floor_msgspec()
        clear_cache()
        cold()
        bad = [c for c in discover([base], entry_points=False).plugins if not c.ok]
        if bad:
            raise SystemExit(f"generated plugins are not all valid: {bad[0].problem}")

        samples: dict[str, list[float]] = {
            "floor": [],
            "floor-msgspec": [],
            "cold": [],
            "warm": [],
            "jsonschema": [],
        }
        jsonschema_rounds = max(1, min(repeat, 3))  # it is slow and only a reference
        for r in range(repeat):
            samples["floor"].append(_time(floor))
            samples["floor-msgspec"].append(_time(floor_msgspec))
            samples["cold"].append(_time(cold, setup=clear_cache))
            samples["warm"].append(_time(warm))
            if r < jsonschema_rounds:
                samples["jsonschema"].append(_time(plain_jsonschema))

        eps: list[float] = []
        n_eps = len(scan_entry_points())
        for _ in range(repeat):
            eps.append(_time(scan_entry_points))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        clear_cache()

    medians = {k: statistics.median(v) for k, v in samples.items()}
    msgspec_floor = medians.pop("floor-msgspec")
    base = medians["floor"]
    return {
        "n": n,
        "repeat": repeat,
        "generate_s": gen_s,
        "medians": medians,
        "floors": {"json": base, "msgspec": msgspec_floor},
        "ratios": {k: medians[k] / base for k in ("cold", "warm", "jsonschema")},
        "ratios_msgspec": {k: medians[k] / msgspec_floor for k in ("cold", "warm")},
        "paired": {k: _paired(samples[k], samples["floor"]) for k in ("cold", "warm")},
        "samples": samples,
        "entry_points": {"median": statistics.median(eps), "count": n_eps},
    }


def _paired(case: list[float], floor: list[float]) -> tuple[float, float, float]:
    """Quartiles of the case/floor ratio per repetition: each pair was measured back to
    back, so their spread shows how much of a verdict is the machine's noise."""
    ratios = [c / f for c, f in zip(case, floor, strict=True)]
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0]
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    return q1, q2, q3


def report(res: dict[str, Any]) -> bool:
    n, med, floors = res["n"], res["medians"], res["floors"]
    base, fast = floors["json"], floors["msgspec"]
    print(f"discovery benchmark: {n} directory plugins, {res['repeat']} repetition(s), medians")
    print(f"(generated in {res['generate_s'] * 1000:.0f} ms; python {sys.version.split()[0]})")
    print()
    header = (
        f"{'case':<14} {'ms total':>10} {'µs/plugin':>10} {'x floor':>8} {'x msgspec':>9}"
        f"  {'target':<8} result"
    )
    print(header)
    print("-" * len(header))
    ok = True
    rows = [
        ("floor", base, "baseline"),
        ("floor-msgspec", fast, "reference floor"),
        ("cold", med["cold"], None),
        ("warm", med["warm"], None),
        ("jsonschema", med["jsonschema"], "reference"),
    ]
    for case, t, fixed in rows:
        ratio = t / base if base else float("inf")
        ratio_fast = t / fast if fast else float("inf")
        target = TARGETS.get(case)
        if target is None:
            tgt, verdict = "-", fixed or "reference"
        else:
            passed = ratio <= target
            ok &= passed
            tgt, verdict = f"<= {target:g}x", "PASS" if passed else "FAIL"
        print(
            f"{case:<14} {t * 1000:>10.2f} {t * 1e6 / n:>10.1f} {ratio:>8.2f} {ratio_fast:>9.2f}"
            f"  {tgt:<8} {verdict}"
        )
    ep = res["entry_points"]
    print()
    for case, (q1, q2, q3) in res["paired"].items():
        print(
            f"{case} / floor per repetition (measured back to back): median {q2:.2f}, "
            f"quartiles {q1:.2f}..{q3:.2f}"
        )
    print(
        "x floor: against read + json.loads (the targets); x msgspec: against read + "
        "msgspec.json.decode (reference)"
    )
    print(
        f"entry-point scan (scan_entry_points, {ep['count']} plugin entry point(s) installed): "
        f"{ep['median'] * 1000:.2f} ms  (independent of the plugin folders)"
    )
    print(f"overall: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="plugin folders (default 1000)")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions (default 7)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where to generate the plugins")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be at least 1")
    setup_django()
    res = run(args.n, args.repeat, args.tmpdir)
    ok = report(res)
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=2))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
