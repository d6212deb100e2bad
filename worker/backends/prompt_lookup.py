"""Draft tokens for speculative decoding from the row's own text (prompt lookup): where the last
few tokens occurred earlier in the conversation, the tokens that followed them there.

The recipe copies a lot: a revision restates most of the answer it revises, a critique quotes
it, and a small model's greedy replies repeat their own phrases. Measured on the default run
(benchmarks/README.md), about four drafted tokens in five are what the model writes next.
A draft is only a guess: decoding reads it with the row's next token and keeps the part the
model's own picks agree with, so what a row writes does not depend on it.
"""

from collections.abc import Sequence

# The longest and shortest n-gram looked up: a longer match is the likelier to continue alike.
LONGEST = 3
SHORTEST = 2


class PromptLookup:
    """One row's n-gram index: for each n-gram of the text so far, where it last started with
    at least one token after it."""

    def __init__(self, tokens: Sequence[int]) -> None:
        self._tokens: list[int] = []
        self._last: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        """The row's text grows by `tokens`."""
        for token in tokens:
            end = len(self._tokens)
            for n in range(SHORTEST, LONGEST + 1):
                if end >= n:
                    # The n-gram just before this token now has a token after it.
                    self._last[tuple(self._tokens[end - n : end])] = end - n
            self._tokens.append(token)

    def draft(self, most: int) -> list[int]:
        """Up to `most` tokens that followed the latest earlier occurrence of the text's last
        n-gram (the longest that occurred before), or none."""
        if most <= 0:
            return []
        for n in range(LONGEST, SHORTEST - 1, -1):
            if len(self._tokens) <= n:
                continue
            start = self._last.get(tuple(self._tokens[-n:]))
            if start is not None:
                return self._tokens[start + n : start + n + most]
        return []
