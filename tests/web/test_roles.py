"""Walks every route with every role: the expected minimum role is written out here, by hand."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.constitutions import create_constitution, few_shots_of, principles_of, start_draft
from app.models import (
    Comparison,
    Dataset,
    Job,
    LanguageModel,
    Prompt,
    ReplyPair,
    Role,
    Trace,
    User,
)
from app.prompt_files import ParsedPrompt
from app.prompt_sets import store_prompt_set
from app.recipe.documents import ConstitutionDoc, FewShotDoc, PrincipleDoc
from tests.conftest import RecordingQueue, csrf

PUBLIC = None
EXPECTED: dict[tuple[str, str], Role | None] = {
    ("GET", "/"): Role.VIEWER,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/account/password"): Role.VIEWER,
    ("POST", "/account/password"): Role.VIEWER,
    ("GET", "/admin/users"): Role.ADMIN,
    ("POST", "/admin/users"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}"): Role.ADMIN,
    ("POST", "/admin/users/{user_id}/reset-password"): Role.ADMIN,
    ("GET", "/admin/audit"): Role.ADMIN,
    ("GET", "/jobs"): Role.VIEWER,
    ("GET", "/jobs/{job_id}"): Role.VIEWER,
    ("GET", "/jobs/{job_id}/status"): Role.VIEWER,
    ("GET", "/jobs/{job_id}/finished"): Role.VIEWER,
    ("POST", "/jobs/{job_id}/cancel"): Role.AUTHOR,
    ("GET", "/prompt-sets"): Role.VIEWER,
    ("GET", "/prompt-sets/import"): Role.AUTHOR,
    ("POST", "/prompt-sets/import"): Role.AUTHOR,
    ("GET", "/prompt-sets/{set_id}"): Role.VIEWER,
    ("POST", "/prompt-sets/{set_id}/sample"): Role.AUTHOR,
    ("POST", "/prompt-sets/{set_id}/delete"): Role.AUTHOR,
    ("GET", "/jobs/{job_id}/stats"): Role.VIEWER,
    ("POST", "/jobs/{job_id}/reviews-needed"): Role.AUTHOR,
    ("GET", "/traces"): Role.VIEWER,
    ("GET", "/traces/{trace_id}"): Role.VIEWER,
    ("GET", "/review"): Role.REVIEWER,
    ("POST", "/traces/{trace_id}/review"): Role.REVIEWER,
    ("POST", "/traces/{trace_id}/suggest-principle"): Role.REVIEWER,
    ("GET", "/models"): Role.VIEWER,
    ("POST", "/models"): Role.AUTHOR,
    ("GET", "/generate"): Role.AUTHOR,
    ("POST", "/generate"): Role.AUTHOR,
    ("GET", "/generate/sampling"): Role.AUTHOR,
    ("GET", "/generate/estimate"): Role.AUTHOR,
    ("POST", "/jobs/{job_id}/resume"): Role.AUTHOR,
    ("GET", "/datasets"): Role.VIEWER,
    ("POST", "/datasets"): Role.AUTHOR,
    ("GET", "/datasets/{dataset_id}"): Role.VIEWER,
    ("GET", "/datasets/{dataset_id}/status"): Role.VIEWER,
    ("GET", "/datasets/{dataset_id}/download/{fmt}"): Role.VIEWER,
    ("GET", "/feedback"): Role.VIEWER,
    ("GET", "/feedback/pairs"): Role.AUTHOR,
    ("POST", "/feedback/pairs"): Role.AUTHOR,
    ("GET", "/feedback/label"): Role.AUTHOR,
    ("POST", "/feedback/label"): Role.AUTHOR,
    ("GET", "/feedback/eval"): Role.AUTHOR,
    ("POST", "/feedback/eval"): Role.AUTHOR,
    ("GET", "/feedback/runs/{run_id}"): Role.VIEWER,
    ("POST", "/feedback/runs/{run_id}/dataset"): Role.AUTHOR,
    ("GET", "/feedback/runs/{run_id}/review"): Role.REVIEWER,
    ("POST", "/comparisons/{comparison_id}/label"): Role.REVIEWER,
    ("GET", "/evaluations"): Role.VIEWER,
    ("GET", "/evaluations/new"): Role.AUTHOR,
    ("POST", "/evaluations/new"): Role.AUTHOR,
    ("GET", "/evaluations/{run_id}"): Role.VIEWER,
    ("GET", "/evaluations/{run_id}/judgements"): Role.VIEWER,
    ("GET", "/evaluations/{run_id}/replies"): Role.VIEWER,
    ("GET", "/evaluations/ab"): Role.AUTHOR,
    ("POST", "/evaluations/ab"): Role.AUTHOR,
    ("GET", "/evaluations/ab/{job_id}"): Role.VIEWER,
    ("GET", "/evaluations/ab/{job_id}/comparisons"): Role.VIEWER,
    ("GET", "/evaluations/{run_id}/judgements/label"): Role.REVIEWER,
    ("POST", "/evaluations/{run_id}/judgements/{judgement_id}/label"): Role.REVIEWER,
    ("GET", "/evaluations/{run_id}/replies/label"): Role.REVIEWER,
    ("POST", "/evaluations/{run_id}/replies/{reply_id}/label"): Role.REVIEWER,
    ("GET", "/judge-checks/new"): Role.AUTHOR,
    ("POST", "/judge-checks/new"): Role.AUTHOR,
    ("GET", "/training"): Role.AUTHOR,
    ("POST", "/training"): Role.AUTHOR,
    ("GET", "/rl"): Role.AUTHOR,
    ("POST", "/rl"): Role.AUTHOR,
    ("GET", "/constitutions"): Role.VIEWER,
    ("POST", "/constitutions"): Role.AUTHOR,
    ("GET", "/constitutions/import"): Role.AUTHOR,
    ("POST", "/constitutions/import"): Role.AUTHOR,
    ("GET", "/constitutions/{constitution_id}"): Role.VIEWER,
    ("POST", "/constitutions/{constitution_id}/drafts"): Role.AUTHOR,
    ("GET", "/constitutions/{constitution_id}/diff"): Role.VIEWER,
    ("GET", "/versions/{version_id}"): Role.VIEWER,
    ("GET", "/versions/{version_id}/export"): Role.VIEWER,
    ("POST", "/versions/{version_id}/publish"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/system-prompt"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/principles"): Role.AUTHOR,
    ("GET", "/versions/{version_id}/principles/{principle_id}"): Role.VIEWER,
    ("GET", "/versions/{version_id}/principles/{principle_id}/edit"): Role.AUTHOR,
    ("GET", "/versions/{version_id}/principles/{principle_id}/preview"): Role.VIEWER,
    ("POST", "/versions/{version_id}/principles/{principle_id}"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/principles/{principle_id}/move"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/principles/{principle_id}/delete"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/few-shots"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/few-shots/{few_shot_id}"): Role.AUTHOR,
    ("POST", "/versions/{version_id}/few-shots/{few_shot_id}/delete"): Role.AUTHOR,
}


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    # The OpenAPI schema lists every route of every included router, with its methods.
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, methods in paths.items() for method in methods}


def test_every_route_is_in_the_matrix(make_client: Callable[..., TestClient]) -> None:
    assert app_routes(make_client()) == set(EXPECTED)


@pytest.fixture
def objects(session: Session, users: dict[Role, User]) -> dict[str, int]:
    prompt_set = store_prompt_set(
        session=session,
        name="set",
        prompts=[
            ParsedPrompt(text=f"prompt {i}", context=None, line=i, metadata={}) for i in range(3)
        ],
    )
    job = Job(kind="generate", queue="gpu")
    session.add(job)
    constitution, version = create_constitution(
        session=session,
        doc=ConstitutionDoc(
            name="c",
            principles=[PrincipleDoc(key="k", critique_request="c", revision_request="r")],
            few_shots=[
                FewShotDoc(kind="critique-revision", messages=[{"role": "user", "content": "hi"}])
            ],
        ),
        user=None,
        publish=True,
    )
    draft = start_draft(
        session=session, constitution=constitution, source=version, user=users[Role.ADMIN]
    )
    session.commit()
    principle = principles_of(session=session, version=draft)[0]
    model = LanguageModel(name="m", backend="transformers", path="m")
    session.add(model)
    session.flush()
    prompt = session.exec(select(Prompt).where(Prompt.prompt_set_id == prompt_set.id)).first()
    assert prompt is not None
    trace = Trace(
        job_id=job.id or 0,
        prompt_id=prompt.id or 0,
        constitution_version_id=version.id or 0,
        model_id=model.id or 0,
        initial_reply="a",
        final_reply="b",
    )
    session.add(trace)
    dataset = Dataset(name="d", source_job_ids=[job.id or 0])
    session.add(dataset)
    pair = ReplyPair(
        job_id=job.id or 0,
        prompt_id=prompt.id or 0,
        model_id=model.id or 0,
        reply_a="a",
        reply_b="b",
    )
    label_job = Job(kind="label_pairs", queue="gpu")
    session.add_all([pair, label_job])
    session.flush()
    comparison = Comparison(
        job_id=label_job.id or 0,
        pair_id=pair.id or 0,
        constitution_version_id=version.id or 0,
        model_id=model.id or 0,
        prob_a=0.6,
        prob_b=0.4,
        label="A",
    )
    session.add(comparison)
    session.commit()
    few_shot = few_shots_of(session=session, version=draft)[0]
    assert prompt_set.id and job.id and users[Role.VIEWER].id
    return {
        "set_id": prompt_set.id,
        "job_id": job.id,
        "user_id": users[Role.VIEWER].id,
        "constitution_id": constitution.id or 0,
        "version_id": draft.id or 0,
        "principle_id": principle.id or 0,
        "few_shot_id": few_shot.id or 0,
        "published_id": version.id or 0,
        "trace_id": trace.id or 0,
        "dataset_id": dataset.id or 0,
        "run_id": label_job.id or 0,
        "comparison_id": comparison.id or 0,
        # No evaluation rows: past the role check these answer 404, which the matrix allows.
        "judgement_id": 1,
        "reply_id": 1,
    }


QUERIES = {"/constitutions/{constitution_id}/diff": "?a={published_id}&b={version_id}"}
FORM_DATA = {
    "/jobs/{job_id}/reviews-needed": {"reviews_needed": "1"},
    "/traces/{trace_id}/review": {"verdict": "approve"},
    "/comparisons/{comparison_id}/label": {"choice": "A"},
    "/admin/users/{user_id}": {"role": "viewer", "is_active": "true"},
    "/prompt-sets/{set_id}/sample": {"size": "2", "seed": "1", "name": "sampled"},
    "/admin/users": {"username": "", "password": ""},
}


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r.value if r else "anonymous")
def test_role_matrix(
    role: Role | None,
    make_client: Callable[..., TestClient],
    objects: dict[str, int],
    queue: RecordingQueue,
    users: dict[Role, User],
) -> None:
    client = make_client(role)
    # Deletion and sign-out last, so the walk keeps its objects and its session.
    for (method, path), minimum in sorted(
        EXPECTED.items(), key=lambda item: (item[0][1] == "/logout", item[0][1].endswith("/delete"))
    ):
        url = (path + QUERIES.get(path, "")).format(**objects, fmt="jsonl")
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(
                url, data={**FORM_DATA.get(path, {}), "csrf_token": csrf(client)}
            )
        where = f"{method} {path} as {role.value if role else 'anonymous'}"
        if minimum is None:
            assert response.status_code not in (401, 403), where
        elif role is None:
            assert response.status_code in (303, 401), where
            if method == "GET":
                assert response.headers["location"].startswith("/login?next="), where
        elif role.at_least(minimum):
            assert response.status_code not in (401, 403), (
                f"{where}: {response.status_code} {response.text[:200]}"
            )
        else:
            assert response.status_code == 403, where
