"""A conversation as a local model reads it: its chat template, then its token ids."""

from transformers import PreTrainedTokenizerBase

from worker.backends.base import Conversation


def chat_prompt_text(tokenizer: PreTrainedTokenizerBase, conversation: Conversation) -> str:
    """The conversation in the model's chat template, the assistant's turn opened."""
    text = tokenizer.apply_chat_template(
        list(conversation), add_generation_prompt=True, tokenize=False
    )
    return str(text)


def encode_templated(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    # The chat template already wrote every special token the model expects.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
