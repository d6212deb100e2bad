"""SL-CAI generation: an initial reply, then rounds of critique and revision under principles.

All prompts at the same step go to the backend in one call, so the engine runs as fast as the
backend batches. The messages come from app.recipe.messages, the same code the preview uses.
"""

import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.recipe.documents import ConstitutionDoc, PrincipleDoc
from app.recipe.messages import base_messages
from worker.backends.base import Backend, Conversation, Generation, GenerationParams

MAX_ROUNDS = 8
# Turn labels a small model invents, at the start of its output or where it starts a new turn.
_LEADING_LABEL = re.compile(
    r"^\s*(assistant|ai|critique|revision|response|answer)\s*:\s*", re.IGNORECASE
)
_INVENTED_TURN = re.compile(
    r"\n\s*(human|user|assistant|critiquerequest|revisionrequest)\s*:", re.IGNORECASE
)


@dataclass(frozen=True)
class GenerationConfig:
    """How a run generates; stored with the run so it can be reproduced."""

    rounds: int = 1
    seed: int = 0
    max_new_tokens: int = 256
    critique_max_new_tokens: int | None = None  # None: the same as max_new_tokens
    revision_max_new_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()

    def params(self, step: str, call: int) -> GenerationParams:
        tokens = {
            "critique": self.critique_max_new_tokens,
            "revision": self.revision_max_new_tokens,
        }.get(step) or self.max_new_tokens
        return GenerationParams(
            max_new_tokens=tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            stop=self.stop,
            seed=self.seed * 1000 + call,
        )


@dataclass(frozen=True)
class PromptInput:
    prompt_id: int
    messages: Conversation  # earlier turns, ending with the user's prompt


@dataclass
class Output:
    text: str
    tokens: int
    seconds: float
    flags: list[str] = field(default_factory=list)


@dataclass
class RoundResult:
    round: int
    principle: PrincipleDoc
    critique: Output
    revision: Output


@dataclass
class TraceResult:
    prompt_id: int
    initial: Output
    rounds: list[RoundResult]
    flags: list[str] = field(default_factory=list)

    @property
    def final_reply(self) -> str:
        return self.rounds[-1].revision.text if self.rounds else self.initial.text


def sample_round_principles(
    principles: Sequence[PrincipleDoc], *, seed: int, prompt_id: int, rounds: int
) -> list[PrincipleDoc]:
    """One enabled principle per round, drawn from a generator seeded by the run and the prompt,
    so a prompt gets the same principles whatever else is in its batch or whether it is resumed."""
    enabled = [p for p in principles if p.enabled]
    if not enabled:
        raise ValueError("the constitution version has no enabled principle")
    rng = random.Random(f"{seed}:{prompt_id}")
    return [rng.choice(enabled) for _ in range(rounds)]


def clean_output(text: str, stop: Sequence[str] = ()) -> str:
    """Drops role labels the model invents and anything after a turn it starts on its own."""
    for sequence in stop:
        if sequence and sequence in text:
            text = text.split(sequence, 1)[0]
    match = _INVENTED_TURN.search(text)
    if match:
        text = text[: match.start()]
    return _LEADING_LABEL.sub("", text).strip()


ProgressFn = Callable[[str], None]


class _Stepper:
    """Sends one step for many conversations to the backend and cleans what comes back."""

    def __init__(self, backend: Backend, config: GenerationConfig) -> None:
        self.backend = backend
        self.config = config
        self.calls = 0

    def run(self, step: str, conversations: list[Conversation]) -> list[Output]:
        outputs = self._once(step, conversations)
        empty = [i for i, output in enumerate(outputs) if not output.text]
        if empty:
            # One more try for the empty ones only; a second empty output is kept and marked.
            retried = self._once(step, [conversations[i] for i in empty])
            for index, output in zip(empty, retried, strict=True):
                output.seconds += outputs[index].seconds
                output.tokens += outputs[index].tokens
                if not output.text:
                    output.flags.append(f"empty_{step}")
                outputs[index] = output
        return outputs

    def _once(self, step: str, conversations: list[Conversation]) -> list[Output]:
        self.calls += 1
        started = time.perf_counter()
        generations: list[Generation] = self.backend.generate(
            conversations, self.config.params(step, self.calls)
        )
        seconds = time.perf_counter() - started
        return [
            Output(
                text=clean_output(g.text, self.config.stop),
                tokens=g.completion_tokens,
                seconds=seconds,
                flags=["truncated"] if g.truncated else [],
            )
            for g in generations
        ]


def critique_and_revise(
    prompts: Sequence[PromptInput],
    constitution: ConstitutionDoc,
    backend: Backend,
    config: GenerationConfig,
    progress: ProgressFn | None = None,
) -> list[TraceResult]:
    """Runs the whole recipe on a batch of prompts; returns one trace per prompt, in order."""
    if not 1 <= config.rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds must be between 1 and {MAX_ROUNDS}, not {config.rounds}")
    stepper = _Stepper(backend, config)
    conversations = [
        [
            turn.as_message()
            for turn in base_messages(
                constitution.system_prompt, constitution.few_shots, p.messages
            )
        ]
        for p in prompts
    ]
    if progress:
        progress("initial replies")
    initial = stepper.run("initial", conversations)
    traces = [
        TraceResult(prompt_id=p.prompt_id, initial=o, rounds=[])
        for p, o in zip(prompts, initial, strict=True)
    ]
    chosen = [
        sample_round_principles(
            constitution.principles, seed=config.seed, prompt_id=p.prompt_id, rounds=config.rounds
        )
        for p in prompts
    ]
    replies = [o.text for o in initial]
    for number in range(config.rounds):
        for conversation, reply, principles in zip(conversations, replies, chosen, strict=True):
            conversation.append({"role": "assistant", "content": reply})
            conversation.append({"role": "user", "content": principles[number].critique_request})
        if progress:
            progress(f"round {number + 1} critiques")
        critiques = stepper.run("critique", conversations)
        for conversation, critique, principles in zip(
            conversations, critiques, chosen, strict=True
        ):
            conversation.append({"role": "assistant", "content": critique.text})
            conversation.append({"role": "user", "content": principles[number].revision_request})
        if progress:
            progress(f"round {number + 1} revisions")
        revisions = stepper.run("revision", conversations)
        for trace, critique, revision, principles in zip(
            traces, critiques, revisions, chosen, strict=True
        ):
            trace.rounds.append(
                RoundResult(
                    round=number + 1,
                    principle=principles[number],
                    critique=critique,
                    revision=revision,
                )
            )
        replies = [r.text for r in revisions]
    for trace in traces:
        outputs = [trace.initial, *(o for r in trace.rounds for o in (r.critique, r.revision))]
        trace.flags = sorted({flag for output in outputs for flag in output.flags})
    return traces
