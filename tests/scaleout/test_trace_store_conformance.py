"""The trace store's suites on SQLite and on PostgreSQL: same records in, same answers out.

Every test below that takes ``trace_store`` is imported from the suites that already hold
SQLite to them (store, feedback cursors, transfer, quality, preferences, and profiles learned
from traced runs of real LangGraph apps); here the fixture gives each backend in turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphroute import ConfigError, TraceStore, optimize
from graphroute.scaleout import open_trace_store
from graphroute.scaleout.postgres import PostgresTraceStore, postgres_migration
from graphroute.traces.records import CallRecord, FeedbackRecord, NodeRunRecord
from graphroute.traces.store import MIGRATIONS, _statements
from tests.graph.test_learning import (  # noqa: F401  (collected here against each backend)
    test_a_70_30_branch_is_learned_within_a_tenth,
    test_a_branch_inside_a_subgraph_is_learned_per_subgraph_run,
    test_loop_iterations_are_learned,
    test_send_fan_out_width_is_learned,
    test_traces_of_another_graph_teach_nothing,
)
from tests.traces.test_calls_of_nodes import (  # noqa: F401
    test_calls_of_several_nodes_include_the_nodes_inside_their_subgraphs,
)
from tests.traces.test_feedback_since import (  # noqa: F401
    test_feedback_since_a_time_returns_only_the_rows_given_after_it,
    test_learning_again_from_the_newest_time_seen_credits_only_the_new_scores,
)
from tests.traces.test_preferences import (  # noqa: F401
    test_automatic_failures_and_an_outcome_file_rank_answers_too,
    test_scored_answers_to_the_same_request_become_a_pair,
)
from tests.traces.test_quality import (  # noqa: F401
    test_hindsight_signals_blame_the_tool_call_and_the_calls_before_a_failure,
)
from tests.traces.test_store import (  # noqa: F401
    test_merge_skips_rows_it_already_holds_and_completes_runs,
    test_queries_filter_by_node_subgraph_model_and_time,
)
from tests.traces.test_transfer import (  # noqa: F401
    test_a_damaged_file_names_the_bad_line,
    test_a_newer_file_with_unknown_fields_still_imports,
    test_an_export_can_leave_the_texts_behind,
)


@pytest.fixture(params=["sqlite", "postgres"])
def trace_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    location = str(tmp_path / "traces.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = open_trace_store(location)
    yield store
    store.close()


def test_every_field_round_trips_exactly(trace_store: TraceStore) -> None:
    now = time.time()  # PostgreSQL's REAL would round this: the schema uses DOUBLE PRECISION
    trace_store.start_run("r1", "graph-id", {"thread_id": "t"}, plan="plan text", budget_usd=0.02)
    call = CallRecord(
        "r1", "plan", "gpt-4o", "cloud", reason="pinned", signals=[{"pillar": "rules", "difficulty": 0.25}],
        input_tokens=120, output_tokens=30, latency_ms=12.5, cost_usd=0.000123456789, cache_hit=True,
        error=None, started_at=now, batched=True, deduped=False, retries=2, request_hash="abc",
        prompt='[{"role": "user", "content": "hi"}]', output="hello", quality=["empty"],
    )  # fmt: skip
    node_run = NodeRunRecord("r1", "plan", step=1, pushed=True, started_at=now, duration_ms=3.25, cache_hit=True)
    feedback = FeedbackRecord("r1", 0.75, node="plan", comment="good", call_id=call.call_id, model="cloud")
    trace_store.record_call(call)
    trace_store.record_node_run(node_run)
    trace_store.record_feedback(feedback)
    trace_store.end_run("r1", "error", "ValueError: boom")

    assert trace_store.calls() == [call]
    assert trace_store.node_runs() == [node_run]
    assert trace_store.feedback(call_id=call.call_id) == [feedback]
    run = trace_store.run("r1")
    assert run is not None
    assert (run.status, run.error, run.metadata) == ("error", "ValueError: boom", {"thread_id": "t"})
    assert (run.plan, run.budget_usd) == ("plan text", 0.02)
    assert [trace_store.count(t) for t in ("runs", "calls", "node_runs", "feedback")] == [1, 1, 1, 1]
    assert trace_store.schema_version == len(MIGRATIONS)
    assert trace_store.integrity_check() == "ok"


def test_the_postgres_schema_is_sqlites_migrations_translated(postgres_url: str) -> None:
    assert "AUTOINCREMENT" in MIGRATIONS[0] and "AUTOINCREMENT" not in postgres_migration(MIGRATIONS[0])
    assert " REAL " not in postgres_migration(MIGRATIONS[0])
    first = PostgresTraceStore(postgres_url)
    second = PostgresTraceStore(postgres_url)  # a second worker: nothing is migrated twice
    assert first.schema_version == second.schema_version == len(MIGRATIONS)
    versions = first._fetch("SELECT version FROM graphroute_migrations ORDER BY version")
    assert [row["version"] for row in versions] == list(range(1, len(MIGRATIONS) + 1))
    first.close()
    second.close()


def test_a_database_url_never_shows_its_password(postgres_url: str) -> None:
    port = postgres_url.split(":")[2].split("/")[0]
    with pytest.raises(ConfigError) as caught:
        open_trace_store(f"postgresql://graphroute:s3cret-pw@127.0.0.1:{port}/no_such_db")
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)
    store = open_trace_store(postgres_url.replace("graphroute@", "graphroute:s3cret-pw@"))  # trust auth ignores it
    assert "s3cret-pw" not in f"{store.path} {store!r}" and store.path.name == postgres_url.rsplit("/", 1)[1]
    store.close()


def test_unknown_schemes_are_refused_with_the_value_named() -> None:
    with pytest.raises(ConfigError, match=r"traces: unknown URL scheme 'mysql' in 'mysql://u:\*\*\*@h/db'"):
        open_trace_store("mysql://u:pw@h/db")
    with pytest.raises(ConfigError, match="traces: redis is not supported here"):
        optimize_with_traces("redis://127.0.0.1:1/0")


def optimize_with_traces(location: str) -> None:
    from langgraph.graph import START, StateGraph

    graph = StateGraph(dict)
    graph.add_node("noop", lambda state: state)
    graph.add_edge(START, "noop")
    optimize(graph, traces=location)


def test_a_schema_2_postgres_database_is_upgraded_in_place_and_rows_get_global_ids(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a database written by an older release
        conn.execute("CREATE TABLE graphroute_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)")
        for number, script in enumerate(MIGRATIONS[:2], start=1):
            for statement in _statements(postgres_migration(script)):
                conn.execute(statement)
            conn.execute("INSERT INTO graphroute_migrations VALUES (%s, now())", (number,))
        conn.execute("INSERT INTO runs(run_id, graph, started_at) VALUES ('r1', 'g', 1.0)")
        conn.execute(
            "INSERT INTO calls(run_id, node, model, cost_usd, started_at) VALUES ('r1', 'plan', 'cloud', 0.5, 1)"
        )
        conn.execute("INSERT INTO feedback(run_id, score, created_at) VALUES ('r1', 1.0, 2.0)")

    store = open_trace_store(postgres_url)

    assert store.schema_version == len(MIGRATIONS)
    [call] = store.calls()
    assert (call.node, call.model, call.cost_usd, call.quality) == ("plan", "cloud", 0.5, [])
    assert len(call.call_id) == 32
    [feedback] = store.feedback()
    assert feedback.score == 1.0 and len(feedback.feedback_id) == 32
    store.close()
