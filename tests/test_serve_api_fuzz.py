"""Schemathesis over the served /openapi.json of `hearth serve --native-api` (issue 19: the fuzzing
that would have found items 4 and 5). The request bodies are in the schema (native_schemas.py), so
the fuzzer sends both bodies that fit them (positive) and bodies that break them (negative), and half
of the bodies name a real model, so inference runs too. Every answer must be below 500, and every
/v1 error must be OpenAI's shape. Bounded: a fixed number of cases per operation and a wall-clock cap;
derandomized, so a failure reproduces. The probe's exact 500s (seed -1, temperature 1e-310, ...) are
pinned by test_serve_api_errors.py (run against the pre-fix server, this generator's 600 cases did not
happen to hit them, while it did find /v1/models/%0A unrouted in the fixed one.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.serve.app import create_app
from test_serve import _start_server
from test_serve_native import CHAT_ID, EMBED_ID, packages  # noqa: F401 - packages is a fixture

schemathesis = pytest.importorskip("schemathesis")  # pinned in pyproject; absent only in a broken venv
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

VALID = {
    "/v1/chat/completions": {"model": CHAT_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    "/v1/embeddings": {"model": EMBED_ID, "input": ["a river", "a city"]},
}
BUDGET_S = 50.0  # the whole run; each operation gets a share
CASES = 100  # per operation and generation mode, at most


@pytest.fixture(scope="module")
def base_url(packages: tuple[Path, Path]) -> Iterator[str]:  # noqa: F811
    from build_packages import DIST

    # Small limits keep the fuzzer's bodies and completions cheap on two cores; the checks are the same.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEARTH_SERVE_MAX_COMPLETION_TOKENS", "64")
        mp.setenv("HEARTH_SERVE_MAX_EMBEDDING_INPUTS", "16")
        app = create_app(DIST, None, native_api=True)
    srv, thread, port = _start_server(app)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def test_schema_describes_the_request_bodies(base_url: str) -> None:
    import urllib.request

    doc = json.loads(urllib.request.urlopen(f"{base_url}/openapi.json", timeout=30).read())
    for path, required in (("/v1/chat/completions", {"model", "messages"}), ("/v1/embeddings", {"model", "input"})):
        body = doc["paths"][path]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert body["required"] is True and set(schema["required"]) == required and "$ref" not in json.dumps(schema)
    chat = doc["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"
    ]
    assert {"presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "seed", "stream", "stop"} <= set(chat)
    assert "/v1/models/{model_id}" in doc["paths"]


def test_fuzz_v1_no_server_errors(base_url: str) -> None:
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(path_regex=r"^/v1/")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
        "GET /v1/models",
        "GET /v1/models/{model_id}",
    }
    deadline = time.monotonic() + BUDGET_S
    tally: dict[str, int] = {"cases": 0, "5xx": 0, "2xx": 0, "4xx": 0, "inference": 0}
    failures: list[str] = []
    # How a generated body is sent: as generated; aimed at a real package; one or two of its fields laid
    # over a valid request; or its optional fields with a valid model and messages/input. The last two
    # let odd values (a negative seed, a subnormal temperature) meet a model instead of stopping at the
    # first other field that fails validation.
    aims = st.tuples(
        st.sampled_from(["as-is", "model", "overlay", "valid-required", "valid-required"]),
        st.sampled_from([CHAT_ID, EMBED_ID, "tiny-llama-trained", "all-MiniLM-L6-v2"]),
        st.lists(st.integers(0, 1 << 16), min_size=1, max_size=2),
    )

    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            stop = time.monotonic() + max(2.0, (deadline - time.monotonic()) / 2)

            @settings(
                max_examples=CASES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(case=op.as_strategy(mode), aim=aims)
            def run(case, aim) -> None:  # type: ignore[no-untyped-def]
                if time.monotonic() > min(stop, deadline):  # noqa: B023 - read while this loop's `run` runs
                    return
                how, model, picks = aim
                if isinstance(case.body, dict) and how == "model":
                    case.body["model"] = model
                elif isinstance(case.body, dict) and how == "overlay" and case.path in VALID and case.body:
                    keys = sorted(case.body)
                    case.body = {
                        **VALID[case.path],
                        **{keys[i % len(keys)]: case.body[keys[i % len(keys)]] for i in picks},
                    }
                elif isinstance(case.body, dict) and how == "valid-required" and case.path in VALID:
                    # Every generated optional field, over a valid model and messages/input.
                    case.body = {**case.body, **{k: v for k, v in VALID[case.path].items() if k != "max_tokens"}}
                response = case.call(base_url=base_url, headers={"Content-Type": "application/json"}, timeout=60)
                tally["cases"] += 1
                status = response.status_code
                if status >= 500:
                    tally["5xx"] += 1
                    failures.append(
                        f"{case.method} {case.formatted_path} {status}: {str(case.body)[:200]} -> {response.text[:300]}"
                    )
                    return
                tally["2xx" if status < 300 else "4xx"] += 1

                if status < 300 and case.method.upper() == "POST":
                    tally["inference"] += 1
                if status >= 400:
                    doc = response.json()
                    err = doc.get("error") if isinstance(doc, dict) else None
                    if not (isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}):
                        failures.append(
                            f"{case.method} {case.formatted_path} {status}: "
                            f"not OpenAI's error shape: {response.text[:200]}"
                        )

            try:
                run()
            except Unsatisfiable:
                # GET /v1/models has no parameters and no body: nothing to break, no negative case.
                assert mode == GenerationMode.NEGATIVE and not op.body, f"no cases for {op.method} {op.path} ({mode})"
    print(
        f"schemathesis: {tally['cases']} cases, {tally['2xx']} 2xx ({tally['inference']} ran a model), "
        f"{tally['4xx']} 4xx, {tally['5xx']} 5xx"
    )
    assert not failures, "\n".join(failures[:10])
    assert tally["inference"] >= 5, "the fuzzer must reach the models, not only the validation"
