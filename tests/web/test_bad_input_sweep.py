"""Bad numbers and ids anywhere give a 4xx that names the field, never a 5xx (issue 11)."""

import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote

import pytest
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.constitutions import principles_of, start_draft
from app.forms import form_id, parse_numbers
from app.models import (
    Comparison,
    Constitution,
    ConstitutionVersion,
    Dataset,
    FewShotConversation,
    Job,
    JobMetric,
    JobStatus,
    LanguageModel,
    Prompt,
    PromptSet,
    ReplyPair,
    Role,
    Trace,
    User,
)
from tests.conftest import csrf
from tests.web.runs import make_run

BAD_VALUES = ["²", "-1", "0", "abc", str(2**63), "9" * 5000]
HTML = {"accept": "text/html,application/xhtml+xml"}

# Routes that read their form by hand (`await request.form()`), with the names they read; the
# others' fields come from their Form() parameters.
HAND_READ_FIELDS: dict[tuple[str, str], list[str]] = {
    ("POST", "/datasets"): [
        "name",
        "description",
        "review_filter",
        "min_change",
        "min_chars",
        "max_chars",
        "max_prompt_chars",
        "drop_duplicates",
        "split_halves",
        "test_fraction",
        "seed",
        "helpful_max_rows",
    ],
    ("POST", "/feedback/pairs"): [
        "prompt_set_id",
        "model_id",
        "max_prompts",
        "sample_size",
        "seed",
        "max_new_tokens",
        "temperature",
        "top_p",
        "chunk_size",
    ],
    ("POST", "/feedback/label"): [
        "pair_job_id",
        "constitution_version_id",
        "model_id",
        "order_average",
        "chain_of_thought",
        "few_shot",
        "ensemble",
        "clamp_low",
        "clamp_high",
        "seed",
        "chunk_size",
        "cot_max_new_tokens",
    ],
    ("POST", "/evaluations/new"): [
        "judge_model_id",
        "constitution_version_id",
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "repetition_penalty",
        "max_prompts",
        "seed",
        "bootstrap_samples",
        "min_judge_kappa",
        "chunk_size",
    ],
}


def seed_rows(session: Session, engine: Engine, users: dict[Role, User]) -> dict[str, str]:
    """One row of each kind, so routes get past "not found"; the good value of each param."""
    run = make_run(session, engine, prompts=2)
    version = session.get(ConstitutionVersion, run.parameters["constitution_version_id"])
    assert version is not None
    constitution = session.get(Constitution, version.constitution_id)
    assert constitution is not None
    draft = start_draft(
        session=session, constitution=constitution, source=version, user=users[Role.ADMIN]
    )
    few_shot = FewShotConversation(
        version_id=draft.id or 0,
        position=0,
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    )
    session.add(few_shot)
    model = session.get(LanguageModel, run.parameters["model_id"])
    prompt_set = session.get(PromptSet, run.parameters["prompt_set_id"])
    assert model is not None and prompt_set is not None
    prompt = session.query(Prompt).filter_by(prompt_set_id=prompt_set.id).first()
    trace = session.query(Trace).filter_by(job_id=run.id).first()
    assert prompt is not None and trace is not None
    pair_job = Job(
        kind="reply_pairs",
        queue="gpu",
        status=JobStatus.SUCCEEDED,
        parameters={"prompt_set_id": prompt_set.id, "model_id": model.id},
    )
    session.add(pair_job)
    session.flush()
    pair = ReplyPair(
        job_id=pair_job.id or 0,
        prompt_id=prompt.id or 0,
        model_id=model.id or 0,
        reply_a="a",
        reply_b="b",
    )
    session.add(pair)
    label_job = Job(
        kind="label_pairs",
        queue="gpu",
        status=JobStatus.SUCCEEDED,
        parameters={"pair_job_id": pair_job.id, "model_id": model.id},
    )
    session.add(label_job)
    session.flush()
    comparison = Comparison(
        job_id=label_job.id or 0,
        pair_id=pair.id or 0,
        constitution_version_id=version.id or 0,
        model_id=model.id or 0,
        principle_keys=["harm"],
        prob_a=0.7,
        prob_b=0.3,
        label="A",
    )
    train_job = Job(kind="train", queue="gpu", status=JobStatus.FAILED)
    session.add_all([comparison, train_job])
    session.flush()
    session.add(JobMetric(job_id=train_job.id or 0, step=1, name="loss", value=1.0))
    dataset = Dataset(name="sweep data", source_job_ids=[run.id or 0], status="failed")
    session.add(dataset)
    session.commit()
    return {
        "constitution_id": str(constitution.id),
        "version_id": str(draft.id),
        "principle_id": str(principles_of(session=session, version=draft)[0].id),
        "few_shot_id": str(few_shot.id),
        "set_id": str(prompt_set.id),
        "job_id": str(run.id),
        "run_id": str(label_job.id),
        "trace_id": str(trace.id),
        "dataset_id": str(dataset.id),
        "comparison_id": str(comparison.id),
        "judgement_id": "1",
        "reply_id": "1",
        "user_id": str(users[Role.VIEWER].id),
        "fmt": "jsonl",
        # Required query and form fields, filled while another field is swept.
        "a": str(version.id),
        "b": str(draft.id),
        "from_version": str(version.id),
        "lock_version": "1",
        "offset": "1",
        "role": "viewer",
        "reviews_needed": "2",
    }


def api_routes(client: TestClient) -> list[APIRoute]:
    """Every route of the app, the included routers' ones too."""
    contexts = iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
    return [c.original_route for c in contexts if isinstance(c.original_route, APIRoute)]


def _all_params(dependant: Dependant, kind: str) -> list[Any]:
    """The dependant's params of one kind ("path_params", ...), with its dependencies' own."""
    found = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        found.extend(f for f in _all_params(sub, kind) if f.alias not in {g.alias for g in found})
    return found


def _is_file(field: Any) -> bool:
    return isinstance(field.field_info, params.File)


def _form_fields(route: APIRoute) -> list[Any]:
    """The route's Form() fields; a form model stands for its own fields."""
    fields: list[tuple[str, Any]] = []
    for field in _all_params(route.dependant, "body_params"):
        annotation = field.field_info.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            fields.extend(annotation.model_fields.items())
        elif not _is_file(field):
            fields.append((field.alias, field.field_info))
    return fields


def _route_params(route: APIRoute, method: str) -> tuple[list[str], list[str], list[str]]:
    """Path params, query params and form fields; the last two with the required ones marked."""
    path = [field.alias for field in _all_params(route.dependant, "path_params")]
    query = [field.alias for field in _all_params(route.dependant, "query_params")]
    form = [name for name, _ in _form_fields(route)]
    for name in HAND_READ_FIELDS.get((method, route.path), []):
        if name not in form:
            form.append(name)
    return path, query, form


def _required(route: APIRoute) -> tuple[set[str], set[str]]:
    query = {
        f.alias for f in _all_params(route.dependant, "query_params") if f.field_info.is_required()
    }
    form = {name for name, info in _form_fields(route) if info.is_required()}
    return query, form


def _url(route: APIRoute, values: dict[str, str]) -> str:
    return route.path.format(**{k: quote(v, safe="") for k, v in values.items()})


class Probe(NamedTuple):
    method: str
    url: str
    query: dict[str, str]
    form: dict[str, str]
    swept: str  # "path job_id", "query page", "form seed"
    fields: set[str]  # every field of the route: a 422 names one of them


def sweep_requests(routes: list[APIRoute], good: dict[str, str]) -> Iterator[Probe]:
    """One request for each route, each of its params and each bad value; the rest good."""
    for route in routes:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            path_names, query_names, form_names = _route_params(route, method)
            required_query, required_form = _required(route)
            fields = {*path_names, *query_names, *form_names}
            good_path = {name: good[name] for name in path_names}
            query = {name: good[name] for name in required_query}
            form = {name: good[name] for name in required_form}
            for name in path_names:
                for value in BAD_VALUES:
                    url = _url(route, good_path | {name: value})
                    yield Probe(method, url, query, form, f"path {name}", fields)
            url = _url(route, good_path)
            for name in query_names:
                for value in BAD_VALUES:
                    yield Probe(method, url, query | {name: value}, form, f"query {name}", fields)
            for name in form_names:
                for value in BAD_VALUES:
                    yield Probe(method, url, query, form | {name: value}, f"form {name}", fields)


def test_no_route_answers_a_bad_number_or_id_with_a_server_error(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    engine: Engine,
) -> None:
    good = seed_rows(session, engine, users)
    client = make_client(Role.ADMIN, raise_server_exceptions=False)
    headers = {**HTML, "X-CSRF-Token": csrf(client)}
    routes = api_routes(client)
    tried = 0
    server_errors: list[str] = []
    unnamed: list[str] = []
    for probe in sweep_requests(routes, good):
        response = client.request(
            probe.method, probe.url, params=probe.query, data=probe.form or None, headers=headers
        )
        tried += 1
        where = f"{probe.method} {probe.url[:80]} {probe.swept}"
        if response.status_code >= 500:
            server_errors.append(f"{where}: {response.status_code}")
        elif response.status_code == 422 and not any(f in response.text for f in probe.fields):
            unnamed.append(f"{where}: {response.text[:300]}")
    # Nothing on the way signed the admin out (which would turn every later request into 303).
    assert client.get("/admin/users").status_code == 200
    summary = (
        f"bad-input sweep: {len(routes)} routes, {tried} requests "
        f"({len(BAD_VALUES)} values each), {len(server_errors)} 5xx"
    )
    print(summary)  # shown with `pytest -s`: the before/after count of issue 11
    assert not server_errors, "\n".join([summary, *server_errors])
    assert not unnamed, "\n".join(unnamed[:20])


def test_an_error_page_for_a_signed_in_user_shows_their_name_in_the_header(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    client = make_client(Role.AUTHOR, raise_server_exceptions=False)
    for url in ("/jobs/99999", "/jobs/99999/status"):
        page = client.get(url, headers=HTML)
        assert page.status_code == 404 and "no job 99999" in page.text
        assert 'title="Change password">author</a>' in page.text
    done = Job(kind="import_prompts", queue="cpu", status=JobStatus.SUCCEEDED)
    session.add(done)
    session.commit()
    refused = client.post(f"/jobs/{done.id}/resume", headers={**HTML, "X-CSRF-Token": csrf(client)})
    assert refused.status_code == 409 and 'title="Change password">author</a>' in refused.text


def test_a_malformed_id_is_a_422_naming_the_field_as_a_page_or_as_json(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client(Role.VIEWER, raise_server_exceptions=False)
    page = client.get("/jobs/abc", headers=HTML)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "job_id" in page.text and 'title="Change password">viewer</a>' in page.text
    for value in ("%C2%B2", str(2**63), "0"):
        fragment = client.get(f"/jobs/{value}/status", headers={"HX-Request": "true"})
        assert fragment.status_code == 422, value
        assert "job_id" in str(fragment.json()["detail"]), fragment.json()
    big_page = client.get("/prompt-sets/1", params={"page": "9" * 5000}, headers=HTML)
    assert big_page.status_code == 422 and "page" in big_page.text


def test_no_route_does_its_work_on_the_event_loop(
    make_client: Callable[..., TestClient],
) -> None:
    routes = api_routes(make_client())
    coroutines = [r.path for r in routes if inspect.iscoroutinefunction(r.endpoint)]
    assert coroutines == []


@pytest.mark.parametrize("raw", ["²", "١٢", "-1", "0", "abc", "1.0", " ", str(2**63), "9" * 5000])
def test_a_form_id_takes_only_an_in_range_ascii_number(raw: str) -> None:
    assert form_id(raw) == 0


def test_a_form_id_reads_a_good_one() -> None:
    assert form_id(" 42 ") == 42 and form_id(str(2**63 - 1)) == 2**63 - 1


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e999", "9" * 5000, "²", "0x10"])
def test_parse_numbers_refuses_non_finite_and_huge_values(raw: str) -> None:
    errors: dict[str, str] = {}
    values = parse_numbers(
        {"n": raw, "x": raw}, {"n": (int, 0, 10**9), "x": (float, 0, 1e9)}, errors
    )
    assert set(errors) == {"n", "x"}
    assert all(not isinstance(v, float) or math.isfinite(v) for v in values.values())


def test_importing_into_a_bad_constitution_id_is_refused(
    make_client: Callable[..., TestClient], users: dict[Role, User]
) -> None:
    client = make_client(Role.AUTHOR, raise_server_exceptions=False)
    headers = {**HTML, "X-CSRF-Token": csrf(client)}
    created = client.post(
        "/constitutions", data={"name": "Mine", "start": "default"}, headers=headers
    )
    version_url = created.headers["location"]
    exported = client.get(f"{version_url}/export", params={"format": "project-json"})
    files = [("files", ("c.json", exported.content))]
    for into in BAD_VALUES:
        response = client.post(
            "/constitutions/import", data={"into": into}, files=files, headers=headers
        )
        assert response.status_code == 422 and "into" in response.text, into
    missing = client.post(
        "/constitutions/import", data={"into": "99999"}, files=files, headers=headers
    )
    assert missing.status_code == 404
