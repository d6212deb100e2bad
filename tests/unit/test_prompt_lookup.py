"""Prompt lookup: drafts are the tokens that followed the text's last n-gram where it last
occurred before, the longest n-gram first."""

from worker.backends.prompt_lookup import PromptLookup


def test_drafts_what_followed_the_last_trigram_before() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 5, 6, 9, 1, 2, 3])
    assert lookup.draft(3) == [4, 5, 6]
    assert lookup.draft(1) == [4]
    # Near the end of the text a draft is as long as what followed.
    assert PromptLookup([7, 8, 9, 5, 7, 8, 9]).draft(4) == [5, 7, 8, 9]


def test_the_latest_occurrence_wins_and_grows_with_the_text() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 1, 2, 3, 5, 1, 2])
    # The bigram (1, 2) last came before 3, 5; the trigram (X, 1, 2) never occurred.
    assert lookup.draft(2) == [3, 5]
    lookup.extend([3])
    assert lookup.draft(2) == [5, 1]


def test_a_bigram_when_no_trigram_matches() -> None:
    lookup = PromptLookup([4, 5, 6, 9, 9, 5, 6])
    assert lookup.draft(2) == [9, 9]


def test_no_draft_without_an_earlier_occurrence_or_room() -> None:
    assert PromptLookup([1, 2, 3, 4]).draft(4) == []
    assert PromptLookup([]).draft(4) == []
    assert PromptLookup([1, 2, 1, 2]).draft(0) == []
