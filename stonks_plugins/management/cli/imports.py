"""``plugins imports NAME [--json]``: what a broker's import made of every row of its files.

Exit 1 when rows were reported (the import is incomplete: those rows are not in the
portfolio until the user acts), when the plugin's count does not add up, or when there is no
report to read; 0 when every row is understood or skipped by a rule.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext

from stonks_plugins.errors import PluginError
from stonks_plugins.imports import ImportReportUnavailable
from stonks_plugins.manager import manager

from . import Adder, Failed, Handler, Output, fail


def register(add: Adder) -> dict[str, Handler]:
    p = add(
        "imports",
        gettext(
            "a broker's import report: rows per file and outcome, and the reported rows "
            "(exit 1 when rows are reported)"
        ),
    )
    p.add_argument("name")
    return {"imports": do_imports}


def do_imports(out: Output, options: dict[str, Any]) -> None:
    try:
        report = manager.import_report(options["name"])
    except (ImportReportUnavailable, PluginError) as exc:
        fail(out, options, str(exc))
    if options["json"]:
        out.emit(report)
    else:
        _print(out, report)
    if report["totals"]["reported"] or not report["complete"]:
        raise Failed("")


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _print(out: Output, report: dict[str, Any]) -> None:
    write = out.stdout.write
    text = gettext("%(name)s: import report read %(at)s")
    write(text % {"name": report["plugin"], "at": f"{report['read_at']:%Y-%m-%d %H:%M:%S %Z}"})
    if not report["files"]:
        write(gettext("no file read yet"))
    else:
        heads = [gettext("FILE"), gettext("ROWS"), gettext("UNDERSTOOD"), gettext("SKIPPED")]
        heads += [gettext("REPORTED"), gettext("RULES")]
        write("{:<32} {:>6} {:>10} {:>7} {:>8}  {}".format(*heads))
        for name, counts in report["files"].items():
            skipped = counts["skipped"]
            rules = ", ".join(f"{rule} {n}" for rule, n in skipped.items())
            write(
                f"{name:<32} {_count(counts['rows']):>6} {_count(counts['understood']):>10} "
                f"{sum(skipped.values()):>7} {counts['reported']:>8}  {rules}"
            )
        t, total = report["totals"], gettext("total")
        write(
            f"{total:<32} {_count(t['rows']):>6} {_count(t['understood']):>10} "
            f"{t['skipped']:>7} {t['reported']:>8}"
        )
    if report["reported"]:
        write("")
        write(gettext("reported rows:"))
        for row in report["reported"]:
            line = "?" if row["line"] is None else row["line"]
            rule = f" [{row['rule']}]" if row["rule"] else ""
            outcome = "" if row["outcome"] == "reported" else f" ({row['outcome']})"
            write(f"  {row['file']}:{line}{outcome} {row['reason']}{rule}")
            if row["text"]:
                write(f"      {row['text']}")
        if report["truncated"]:
            text = gettext("... and %(count)d more (see the console or the API)")
            write("  " + text % {"count": report["truncated"]})
    reported = report["totals"]["reported"]
    write("")
    if reported:
        text = ngettext(
            "incomplete: %(count)d row was reported and not imported; correct the export or "
            "the plugin, then read it again",
            "incomplete: %(count)d rows were reported and not imported; correct the export or "
            "the plugin, then read it again",
            reported,
        )
        write(text % {"count": reported})
    elif not report["complete"]:
        write(gettext("incomplete: the plugin did not account for every row of its files"))
    else:
        write(gettext("complete: every row understood or skipped by a named rule"))
