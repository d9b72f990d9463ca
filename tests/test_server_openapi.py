"""Schemathesis fuzzes every operation of ``/openapi.json`` on a server started for the test.

The run is bounded and deterministic: a fixed number of examples per
operation and generation mode, a fixed seed and no example database. Every
response must be documented (status, content type, body schema, headers) and
none may be a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from talkjs_components.server.routes import OPERATIONS

from .server_process import ServerProcess, serving_process

APP_ID = "fuzz-app"
SECRET_KEY = "sk_fuzz_" + "0123456789abcdef" * 3
EXAMPLES_PER_OPERATION = 10
"""Examples per operation and generation mode; with 20 operations and 2 modes, about 400 calls."""
SEED = 20_240_601

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.ignored_auth,
]


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A high rate limit, so that the fuzzing never meets a 429 it did not cause.
    config = "[limits]\nrequests_per_second = 100000.0\nburst = 100000\n"
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    with serving_process(tmp_path, {APP_ID: SECRET_KEY}, config_text=config) as running:
        yield running


def load_schema(server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(server.base_url + "/openapi.json")


def test_document_covers_route_table(fuzzed_server: ServerProcess) -> None:
    schema = load_schema(fuzzed_server)
    labels = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in schema.get_all_operations()
        if isinstance(result, Ok)
    }
    expected = {f"{operation.method} {operation.full_path}" for operation in OPERATIONS}
    # Schemathesis leaves out the operation that serves the document itself.
    assert expected | {"GET /health"} == labels - {"GET /openapi.json"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_finds_no_errors(fuzzed_server: ServerProcess, mode: GenerationMode) -> None:
    schema = load_schema(fuzzed_server)
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}
    calls = 0
    unsatisfiable: set[str] = set()

    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = {"appId": APP_ID} if "{appId}" in operation.path else None
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

        @hypothesis.seed(SEED)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @given(case=strategy)
        def call(case: schemathesis.Case[Any]) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                base_url=fuzzed_server.base_url,
                headers=headers,
                checks=CHECKS,
                timeout=10,
            )

        try:
            call()
        except hypothesis.errors.Unsatisfiable:
            # Only an operation without parameters or body has no invalid input to generate.
            unsatisfiable.add(f"{operation.method.upper()} {operation.path}")

    assert calls > 0
    expected_unsatisfiable = {"GET /health"} if mode is GenerationMode.NEGATIVE else set()
    assert unsatisfiable == expected_unsatisfiable
    assert "Traceback" not in fuzzed_server.output()
