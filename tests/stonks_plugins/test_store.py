"""The row-level operations of ``stonks_plugins.store`` as the runtime and the operator's
actions use them: recovery from a retryable error, switching off, plain saves inside and
outside a bulk block. (The transition table itself: test_lifecycle.py; the row lock:
test_concurrency.py.)"""

from __future__ import annotations

import pytest
from django.db import transaction

from stonks_plugins import store, writes
from stonks_plugins.discovery import Problem
from stonks_plugins.errors import PluginError, ReasonCode
from stonks_plugins.lifecycle import PluginState
from stonks_plugins.models import EventKind, HealthCheck, Plugin, PluginEvent
from stonks_plugins.sandbox import SandboxError

pytestmark = pytest.mark.django_db
S = PluginState


def failed(code: ReasonCode, name: str = "p", enabled: bool = True) -> Plugin:
    row = Plugin.objects.create(
        name=name, source="directory", type="broker", state=S.ACTIVE.value, enabled=enabled
    )
    with transaction.atomic():
        store.fail(row, Problem(code, f"{code.value} happened"))
    return Plugin.objects.get(pk=row.pk)


def transitions(name: str = "p") -> list[tuple[str, str, str, str]]:
    return list(
        PluginEvent.objects.filter(plugin__name=name, kind=EventKind.TRANSITION)
        .order_by("id")
        .values_list("from_state", "to_state", "reason", "actor")
    )


def test_a_retryable_failure_recovers_to_active_with_the_reason() -> None:
    failed(ReasonCode.TIMEOUT)
    before = len(transitions())
    store.recover("p", "recovered: loaded again")
    row = Plugin.objects.get(name="p")
    assert (row.state, row.error_code, row.error_message) == ("active", "", "")
    walked = transitions()[before:]
    assert walked[0][0] == "error" and walked[-1][1] == "active"
    assert {(reason, actor) for *_, reason, actor in walked} == {
        ("recovered: loaded again", "system")
    }


@pytest.mark.parametrize(
    ("code", "enabled"),
    [
        (ReasonCode.MANIFEST_INVALID, True),  # waits for the operator, not for time
        (ReasonCode.TIMEOUT, False),  # switched off meanwhile: stays as the operator left it
    ],
    ids=["operator-code", "disabled"],
)
def test_recovery_leaves_what_is_not_its_to_change(code: ReasonCode, enabled: bool) -> None:
    failed(code, enabled=enabled)
    failed(ReasonCode.TIMEOUT, name="other")  # another plugin that may recover: not this one
    before = transitions()
    store.recover("p", "recovered: loaded again")
    row = Plugin.objects.get(name="p")
    assert (row.state, row.error_code) == ("error", code.value)
    assert transitions() == before
    assert Plugin.objects.get(name="other").state == "error"  # recover names one plugin


def test_recovering_a_plugin_that_is_gone_does_nothing() -> None:
    store.recover("nowhere", "recovered")
    assert not Plugin.objects.filter(name="nowhere").exists()


def test_deactivate_walks_to_disabled_saying_why_and_who() -> None:
    row = Plugin.objects.create(name="p", source="directory", type="broker", state="active")
    with transaction.atomic():
        store.deactivate(row, "disabled by the operator")
    assert Plugin.objects.get(name="p").state == "disabled"
    assert transitions() == [
        ("active", "unloading", "disabled by the operator", "system"),
        ("unloading", "disabled", "disabled by the operator", "system"),
    ]
    with transaction.atomic():
        store.deactivate(row, "again", actor="ops")  # already off: nothing to walk
    assert len(transitions()) == 2
    other = Plugin.objects.create(name="q", source="directory", type="broker", state="loaded")
    with transaction.atomic():
        store.deactivate(other, "disabled by ops", actor="ops")
    assert {actor for *_, actor in transitions("q")} == {"ops"}


def test_save_writes_at_once_or_when_the_bulk_block_ends() -> None:
    row = Plugin.objects.create(name="p", source="directory", type="broker", state="active")
    stamp = Plugin.objects.get(pk=row.pk).updated_at
    row.revision = 7
    row.display_name = "not saved: not named"
    store.save(row, ["revision"])
    stored = Plugin.objects.get(pk=row.pk)
    assert stored.revision == 7 and stored.display_name != "not saved: not named"
    assert stored.updated_at > stamp  # the change says when
    with transaction.atomic(), writes.bulk():
        row.revision = 8
        store.save(row, ["revision"])
        assert Plugin.objects.get(pk=row.pk).revision == 7  # gathered, not yet written
    assert Plugin.objects.get(pk=row.pk).revision == 8


def test_a_secret_stored_inside_a_bulk_block_is_masked_in_what_follows(  # type: ignore[no-untyped-def]
    plugin_dirs, settings
) -> None:
    # A bulk block reads a plugin's secrets once, for every text it masks; a config stored
    # in the block (an upgrade migrating it) must make it read them again.
    from stonks_plugins.config import versions
    from stonks_plugins.manager import manager

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plugin_dirs.add("config-fixture")
    manager.sync()
    secret = "brand-new-secret-4471"
    config = {"credentials": {"username": "ana", "password": secret}, "settings": {}}
    with transaction.atomic(), writes.bulk():
        row = store.locked("config-fixture")
        store.record(row, EventKind.ACTION, "checking the config")  # secrets read: none yet
        versions.save("config-fixture", config, actor="t", base_version=None)
        store.config_changed("config-fixture")
        store.record(row, EventKind.ACTION, f"login refused for {secret}")
    reasons = list(
        PluginEvent.objects.filter(plugin__name="config-fixture").values_list("reason", flat=True)
    )
    assert any(r.startswith("login refused for ") for r in reasons)
    assert not [r for r in reasons if secret in r]


def test_a_failure_while_serving_is_recorded_with_the_end_of_its_traceback() -> None:
    Plugin.objects.create(name="p", source="directory", type="broker", state="active")
    trace = "frame\n" * 2000 + "ValueError: bad credentials"
    err = SandboxError(
        "p", ReasonCode.INITIALIZE_FAILED, "initialize", "bad credentials", trace, stack="here"
    )
    store.mark_failed(err)
    row = Plugin.objects.get(name="p")
    assert (row.state, row.error_code) == ("error", "initialize_failed")
    assert "bad credentials" in row.error_message
    [info] = row.error_details
    assert info["traceback"] == trace[-8000:] and info["traceback"].endswith("bad credentials")
    assert info["stack"] == "here" and info["operation"] == "initialize"
    assert transitions()[-1][1:] == ("error", row.error_message, "system")


def test_a_plain_plugin_error_is_recorded_without_details() -> None:
    Plugin.objects.create(name="p", source="directory", type="broker", state="active")
    store.mark_failed(PluginError("p", ReasonCode.HEALTH_FAILED, "no answer"), actor="beat")
    row = Plugin.objects.get(name="p")
    assert (row.state, row.error_code, row.error_details) == ("error", "health_failed", [])
    assert transitions()[-1][-1] == "beat"


def test_a_failure_of_a_plugin_switched_off_or_gone_changes_nothing() -> None:
    Plugin.objects.create(name="p", source="directory", type="broker", state="disabled")
    store.mark_failed(PluginError("p", ReasonCode.TIMEOUT, "late"))
    store.mark_failed(PluginError("gone", ReasonCode.TIMEOUT, "late"))
    assert Plugin.objects.get(name="p").state == "disabled" and transitions() == []


def test_a_health_check_never_stores_the_plugins_secret(plugin_dirs, settings) -> None:  # type: ignore[no-untyped-def]
    from stonks_plugins.config import versions
    from stonks_plugins.manager import manager

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plugin_dirs.add("config-fixture")
    manager.sync()
    secret = "health-secret-7719"
    config = {"credentials": {"username": "ana", "password": secret}, "settings": {}}
    versions.save("config-fixture", config, actor="t", base_version=None)
    row = Plugin.objects.get(name="config-fixture")
    check = HealthCheck.objects.create(
        plugin=row,
        status="unhealthy",
        message=f"login refused for {secret}",
        details={"sent": secret, "user": "ana"},
    )
    stored = HealthCheck.objects.get(pk=check.pk)
    assert secret not in stored.message and stored.message.startswith("login refused for ")
    assert secret not in str(stored.details) and stored.details["user"] == "ana"


def _generation() -> int:
    from stonks_plugins.models import Generation

    found = Generation.objects.filter(key="plugins").first()
    return found.value if found is not None else 0


def test_the_same_failure_again_is_not_news_a_new_wording_is_an_event() -> None:
    row = failed(ReasonCode.TIMEOUT)
    events = PluginEvent.objects.filter(plugin=row, kind=EventKind.FAILURE)
    before = _generation()
    with transaction.atomic():
        assert store.fail(row, Problem(ReasonCode.TIMEOUT, "timeout happened")) is False
    assert events.count() == 0 and _generation() == before
    # The same failure in other words (a retry naming another pid): an event, and no
    # process needs to refresh for it.
    with transaction.atomic():
        assert store.fail(row, Problem(ReasonCode.TIMEOUT, "late again"), actor="w1") is True
    assert list(events.values_list("reason", "actor")) == [("late again", "w1")]
    assert Plugin.objects.get(pk=row.pk).error_message == "late again"
    assert _generation() == before
    # Another code changes what processes serve (retryable or not): they must hear of it.
    with transaction.atomic():
        assert store.fail(row, Problem(ReasonCode.IMPORT_ERROR, "gone")) is True
    assert Plugin.objects.get(pk=row.pk).error_code == "import_error"
    assert _generation() == before + 1
    assert events.latest("id").actor == "system"


def test_the_operator_changing_a_refused_config_retries_the_plugin() -> None:
    row = failed(ReasonCode.CONFIG_INVALID)
    before, revision = len(transitions()), row.revision
    with transaction.atomic():
        assert store.retry_for_operator(row, "config version 2 saved", actor="ops") is True
    stored = Plugin.objects.get(pk=row.pk)
    assert (stored.state, stored.revision) == ("active", revision + 1)
    walked = transitions()[before:]
    assert walked[0][0] == "error" and walked[-1][1] == "active"
    assert {(reason, actor) for *_, reason, actor in walked} == {("config version 2 saved", "ops")}


@pytest.mark.parametrize(
    ("code", "enabled"),
    [(ReasonCode.TIMEOUT, True), (ReasonCode.AUTH_FAILED, False)],
    ids=["not-an-operator-code", "disabled"],
)
def test_retry_for_operator_leaves_other_failures(code: ReasonCode, enabled: bool) -> None:
    row = failed(code, enabled=enabled)
    with transaction.atomic():
        assert store.retry_for_operator(row, "config saved") is False
    assert Plugin.objects.get(pk=row.pk).state == "error"


def test_failures_never_store_the_plugins_secret(plugin_dirs, settings) -> None:  # type: ignore[no-untyped-def]
    from stonks_plugins.config import versions
    from stonks_plugins.manager import manager

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plugin_dirs.add("config-fixture")
    manager.sync()
    secret = "failure-secret-5523"
    config = {"credentials": {"username": "ana", "password": secret}, "settings": {}}
    versions.save("config-fixture", config, actor="t", base_version=None)
    row = Plugin.objects.get(name="config-fixture")
    problem = Problem(ReasonCode.AUTH_FAILED, f"refused {secret}", ({"sent": secret},))
    with transaction.atomic():
        store.fail(row, problem)
        store.fail(row, Problem(ReasonCode.AUTH_FAILED, f"refused again: {secret}"))
    store.record_failure("config-fixture", "x" * 3000 + secret, {"sent": secret})
    store.record_failure("gone", "nobody to tell", {})
    stored = Plugin.objects.get(pk=row.pk)
    texts = [stored.error_message, str(stored.error_details)] + [
        f"{reason} {details}"
        for reason, details in PluginEvent.objects.filter(plugin=row).values_list(
            "reason", "details"
        )
    ]
    assert not [t for t in texts if secret in t]
    assert stored.error_message.startswith("refused again: ")
    longest = PluginEvent.objects.filter(plugin=row, kind=EventKind.FAILURE).latest("id")
    assert len(longest.reason) == 2000 and longest.reason.startswith("xxx")


def test_a_missing_plugin_is_named_in_the_error() -> None:
    from stonks_plugins.errors import PluginNotFound

    with pytest.raises(PluginNotFound) as info, transaction.atomic():
        store.locked("nowhere")
    assert "'nowhere'" in str(info.value)


def test_a_crashed_child_process_is_retried_but_an_in_process_health_failure_is_not() -> None:
    # A plugin in its own process whose health check failed had its child restarted: it may
    # come back. One running in the web process waits in error.
    for name, isolation in (("child", "process"), ("inproc", "thread")):
        row = Plugin.objects.create(
            name=name,
            source="directory",
            type="broker",
            state="active",
            manifest={"isolation": isolation},
            trust={"trusted": True},
        )
        with transaction.atomic():
            store.fail(row, Problem(ReasonCode.HEALTH_FAILED, "no answer"))
        store.recover(name, "answered again")
    assert Plugin.objects.get(name="child").state == "active"
    assert Plugin.objects.get(name="inproc").state == "error"


def test_a_transition_is_announced_on_commit_with_who_why_and_the_code(  # type: ignore[no-untyped-def]
    django_capture_on_commit_callbacks,
) -> None:
    from stonks_plugins.lifecycle.signals import plugin_state_changed

    heard: list[dict[str, object]] = []

    def receiver(sender: object, **kwargs: object) -> None:
        heard.append({k: v for k, v in kwargs.items() if k != "signal"})

    plugin_state_changed.connect(receiver, weak=False)
    try:
        row = Plugin.objects.create(name="p", source="directory", type="broker", state="active")
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            store.transition(row, S.ERROR, "it broke", problem=Problem(ReasonCode.TIMEOUT, "x"))
            assert heard == []  # not before the change is committed
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            store.transition(row, S.DISCOVERED, "retry", actor="ops")
    finally:
        plugin_state_changed.disconnect(receiver)
    assert heard == [
        {
            "name": "p",
            "from_state": "active",
            "to_state": "error",
            "reason": "it broke",
            "actor": "system",
            "code": "timeout",
        },
        {
            "name": "p",
            "from_state": "error",
            "to_state": "discovered",
            "reason": "retry",
            "actor": "ops",
            "code": "",
        },
    ]
    stored = Plugin.objects.get(pk=row.pk)
    assert (stored.error_code, stored.error_message) == ("", "")  # cleared on the way back


def test_a_transition_with_a_problem_outside_error_keeps_no_error() -> None:
    row = Plugin.objects.create(name="p", source="directory", type="broker", state="loaded")
    with transaction.atomic():
        store.transition(row, S.ACTIVE, "up", problem=Problem(ReasonCode.TIMEOUT, "stale"))
    assert Plugin.objects.get(pk=row.pk).error_code == ""
