"""States and transitions: one explicit table; an illegal move raises and changes nothing, a
legal one is an event row saying who, when, from, to and why."""

from __future__ import annotations

import itertools

import pytest

from stonks_plugins import store
from stonks_plugins.discovery import Problem
from stonks_plugins.errors import IllegalTransition, ReasonCode
from stonks_plugins.lifecycle import TRANSITIONS, PluginState, check_transition
from stonks_plugins.models import EventKind, Plugin, PluginEvent

S = PluginState
ALL_PAIRS = list(itertools.product(PluginState, PluginState))
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


def pair_id(pair: object) -> str:
    return str(pair)


def make(state: PluginState, name: str = "p") -> Plugin:
    return Plugin.objects.create(name=name, source="directory", type="broker", state=state.value)


def test_table_covers_every_state_and_has_no_self_loops() -> None:
    assert set(TRANSITIONS) == set(PluginState)
    assert all(s not in targets for s, targets in TRANSITIONS.items())
    # The seed's seven states, stored as these strings.
    assert {s.value for s in PluginState} == {
        "discovered",
        "loading",
        "loaded",
        "active",
        "error",
        "disabled",
        "unloading",
    }


def test_every_state_can_reach_active_and_disabled() -> None:
    def reachable(start: PluginState) -> set[PluginState]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for state in PluginState:
        assert {S.ACTIVE, S.DISABLED} <= reachable(state) | {state}, state


@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transition_raises(current: PluginState, target: PluginState) -> None:
    with pytest.raises(IllegalTransition) as err:
        check_transition("p", current, target)
    assert err.value.current == current and err.value.target == target
    text = str(err.value)
    assert f"cannot go from '{current}' to '{target}'" in text
    for allowed in TRANSITIONS[current]:
        assert allowed.value in text  # says what is possible instead


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transition_on_a_row_changes_nothing(
    current: PluginState, target: PluginState
) -> None:
    plugin = make(current)
    with pytest.raises(IllegalTransition):
        store.transition(plugin, target, "test", actor="tester")
    plugin.refresh_from_db()
    assert plugin.state == current.value
    assert not PluginEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_legal_transition_is_recorded_as_an_event(
    current: PluginState, target: PluginState
) -> None:
    plugin = make(current)
    problem = Problem(ReasonCode.HEALTH_FAILED, "health check failed: disk full")
    store.transition(
        plugin,
        target,
        "because of a test",
        actor="tester",
        problem=problem if target is S.ERROR else None,
    )
    plugin.refresh_from_db()
    assert plugin.state == target.value
    [event] = PluginEvent.objects.filter(plugin=plugin)
    assert (event.kind, event.from_state, event.to_state) == (
        EventKind.TRANSITION,
        current.value,
        target.value,
    )
    assert (event.actor, event.reason) == ("tester", "because of a test")
    assert event.created_at is not None
    if target is S.ERROR:
        assert plugin.error == {
            "code": "health_failed",
            "message": "health check failed: disk full",
        }
        assert event.details["code"] == "health_failed"


@pytest.mark.django_db
def test_leaving_error_clears_the_reason() -> None:
    plugin = make(S.LOADING)
    store.transition(plugin, S.ERROR, "x", problem=Problem(ReasonCode.TIMEOUT, "took too long"))
    assert plugin.error_code == "timeout"
    store.transition(plugin, S.DISCOVERED, "retry")
    plugin.refresh_from_db()
    assert (plugin.error_code, plugin.error_message, plugin.error) == ("", "", None)


@pytest.mark.django_db
@pytest.mark.parametrize("start", list(PluginState), ids=str)
def test_activate_walks_only_legal_steps(start: PluginState) -> None:
    plugin = make(start)
    store.activate(plugin, "test")
    plugin.refresh_from_db()
    assert plugin.state == S.ACTIVE
    steps = list(
        PluginEvent.objects.filter(plugin=plugin)
        .order_by("id")
        .values_list("from_state", "to_state")
    )
    for a, b in steps:
        assert PluginState(b) in TRANSITIONS[PluginState(a)]
    assert [b for _, b in steps][-1:] in ([], ["active"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "start",
    [S.DISCOVERED, S.LOADED, S.ACTIVE, S.ERROR, S.UNLOADING, S.LOADING, S.DISABLED],
    ids=str,
)
def test_deactivate_ends_disabled(start: PluginState) -> None:
    plugin = make(start)
    store.deactivate(plugin, "test")
    plugin.refresh_from_db()
    assert plugin.state == S.DISABLED
    if start is S.ACTIVE:
        path = list(
            PluginEvent.objects.filter(plugin=plugin)
            .order_by("id")
            .values_list("to_state", flat=True)
        )
        assert path == ["unloading", "disabled"]


@pytest.mark.django_db
def test_fail_records_once_per_distinct_problem() -> None:
    plugin = make(S.ACTIVE)
    problem = Problem(ReasonCode.IMPORT_ERROR, "No module named 'x'")
    assert store.fail(plugin, problem) is True
    assert store.fail(plugin, problem) is False  # same problem: nothing new
    assert PluginEvent.objects.filter(plugin=plugin).count() == 1
    other = Problem(ReasonCode.INITIALIZE_FAILED, "initialize() returned False")
    assert store.fail(plugin, other) is True
    plugin.refresh_from_db()
    assert plugin.error_code == "initialize_failed"
    kinds = list(
        PluginEvent.objects.filter(plugin=plugin).order_by("id").values_list("kind", flat=True)
    )
    assert kinds == [EventKind.TRANSITION, EventKind.FAILURE]


@pytest.mark.django_db
def test_locked_unknown_plugin_names_the_fix() -> None:
    from stonks_plugins.errors import PluginNotFound

    with pytest.raises(PluginNotFound, match="plugins sync"):
        store.locked("nope")
