"""Launching RL from the browser's form: field errors (422, named), a valid launch, the job page."""

import json
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import Job, JobMetric, JobStatus, LanguageModel, Prompt, PromptSet, Role, User
from app.specs.rl import RLJobSpec
from tests.conftest import RecordingQueue, post


def make_model(session: Session, name: str, kind: str = "policy") -> LanguageModel:
    model = LanguageModel(name=name, backend="transformers", path=f"/models/{name}", kind=kind)
    session.add(model)
    session.commit()
    return model


def make_set(session: Session, name: str, prompts: int = 2) -> PromptSet:
    prompt_set = PromptSet(name=name, prompt_count=prompts)
    session.add(prompt_set)
    session.commit()
    for i in range(prompts):
        session.add(
            Prompt(prompt_set_id=prompt_set.id, position=i, text=f"{name} {i}", content_hash=f"{i}")
        )
    session.commit()
    return prompt_set


def form_for(client: TestClient, **query: str) -> dict[str, str]:
    page = client.get("/rl", params=query).text
    form = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page))
    for name, body in re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        form[name] = chosen.group(1) if chosen else ""
    return form


def field_error(page: str, text: str) -> bool:
    return bool(re.search(r'class="field-error" role="alert">[^<]*' + re.escape(text), page))


def test_bad_rl_forms_are_422_with_the_field_named_and_a_good_one_queues_a_gpu_job(
    make_client: Callable[..., TestClient],
    users: dict[Role, User],
    session: Session,
    queue: RecordingQueue,
) -> None:
    policy, reward = make_model(session, "sl-cai"), make_model(session, "pm", kind="reward")
    red, helpful = make_set(session, "red"), make_set(session, "helpful")
    author = make_client(Role.AUTHOR)
    form = form_for(author, model=str(policy.id), reward=str(reward.id), preset="cpu-smoke")
    assert form["num_generations"] == "2" and form["algorithm"] == "grpo"
    assert form["policy_model_id"] == str(policy.id) and form["reward_model_id"] == str(reward.id)
    good = {**form, f"weight_{red.id}": "3", f"weight_{helpful.id}": "1", "output_name": "rl-cai"}

    one_generation = post(author, "/rl", data={**good, "num_generations": "1"})
    assert one_generation.status_code == 422
    assert field_error(one_generation.text, "at least 2 generations")
    swapped = post(
        author, "/rl", data={**good, "policy_model_id": str(reward.id), "reward_model_id": "9999"}
    )
    assert swapped.status_code == 422
    assert field_error(swapped.text, "pm is a reward model")
    assert field_error(swapped.text, "no such model")
    no_sets = post(
        author, "/rl", data={**good, f"weight_{red.id}": "", f"weight_{helpful.id}": "0"}
    )
    assert no_sets.status_code == 422 and field_error(no_sets.text, "at least one prompt set")
    uneven = post(
        author,
        "/rl",
        data={**good, "per_device_train_batch_size": "3", "beta": "-1", "top_p": "0"},
    )
    assert uneven.status_code == 422
    assert field_error(uneven.text, "not a multiple of 2 generations")
    assert uneven.text.count('class="field-error"') >= 3  # beta and top_p too, all at once
    assert not queue.sent

    launched = post(author, "/rl", data=good)
    assert launched.status_code == 303, launched.text
    job = session.exec(select(Job)).one()
    assert (job.kind, job.queue) == ("rl", "gpu")
    assert queue.sent == [("worker.tasks.run_rl", job.id, "gpu")]
    spec = RLJobSpec.from_parameters(job.parameters)
    assert spec.weights() == {red.id: 3.0, helpful.id: 1.0}
    assert (spec.policy_model_id, spec.reward_model_id, spec.output_name) == (
        policy.id,
        reward.id,
        "rl-cai",
    )
    # A viewer cannot launch.
    assert post(make_client(Role.VIEWER), "/rl", data=good).status_code == 403


def test_the_rl_job_page_shows_the_reward_with_its_spread_samples_escaped_and_goodhart(
    make_client: Callable[..., TestClient], users: dict[Role, User], session: Session
) -> None:
    samples = [
        {
            "step": step,
            "repeated_share": share,
            "mean_words": 9.0,
            "reward_mean": reward,
            "top_ngrams": ["you are valid valued"],
            "rows": [
                {
                    "prompt": "<b>hi</b>",
                    "completion": "<script>alert(1)</script> you are valid valued",
                    "reward": reward,
                    "prompt_set_id": 1,
                }
            ],
        }
        for step, share, reward in [(2, 0.1, 0.2), (4, 0.3, 0.5), (6, 0.6, 0.9)]
    ]
    job = Job(
        kind="rl",
        queue="gpu",
        status=JobStatus.RUNNING,
        parameters={"policy_model_id": 1, "reward_model_id": 2, "prompt_mix": []},
        result={"samples": samples},
    )
    session.add(job)
    session.commit()
    for step, share, reward in [(2, 0.1, 0.2), (4, 0.3, 0.5), (6, 0.6, 0.9)]:
        for name, value in [
            ("reward", reward),
            ("reward_std", 0.1),
            ("kl", 0.01 * step),
            ("goodhart/repeated_share", share),
            ("goodhart/reward_mean", reward),
        ]:
            session.add(JobMetric(job_id=job.id, step=step, name=name, value=value))
    session.commit()
    page = make_client(Role.VIEWER).get(f"/jobs/{job.id}").text
    assert "goodhart-warning" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    # The reward's chart carries its spread too (static/curves.js draws mean ± std as a band).
    charts = re.findall(r'data-chart="([^"]+)" data-series=\'([^\']*)\'', page)
    assert [name for name, _ in charts[:2]] == ["reward", "kl"]
    reward = json.loads(charts[0][1])
    assert reward == {
        "reward": [[2, 0.2], [4, 0.5], [6, 0.9]],
        "reward_std": [[2, 0.1], [4, 0.1], [6, 0.1]],
    }
    assert page.index('data-step="6"') < page.index('data-step="2"')  # newest table first
    # The poll asks only for newer metric rows, as the training page does.
    assert re.search(rf'hx-get="/jobs/{job.id}/status\?after_metric=\d+"', page)
