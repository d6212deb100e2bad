"""Prompts drawn from several prompt sets by a mixing ratio (the paper mixes red-team and
helpful prompts), seeded: the same sets, weights and seed give the same prompts in order."""

import random
from collections.abc import Mapping, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def mix_prompts(
    sets: Mapping[int, Sequence[Item]], weights: Mapping[int, float], count: int, seed: int
) -> list[tuple[int, Item]]:
    """`count` (set id, prompt) pairs: each draw picks a set with probability proportional to
    its weight, then that set's next prompt in a seeded shuffled order (starting again, in a
    new order, once the set is used up). Sets without prompts or weight are left out."""
    usable = [set_id for set_id in sets if sets[set_id] and weights.get(set_id, 0) > 0]
    if not usable or count <= 0:
        return []
    rng = random.Random(seed)
    orders: dict[int, list[Item]] = {}
    drawn: list[tuple[int, Item]] = []
    chosen = rng.choices(usable, weights=[weights[s] for s in usable], k=count)
    for set_id in chosen:
        if not orders.get(set_id):
            order = list(sets[set_id])
            rng.shuffle(order)
            orders[set_id] = order
        drawn.append((set_id, orders[set_id].pop()))
    return drawn
