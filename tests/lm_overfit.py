"""Overfit a language model on a text by hand, and measure how much of the text it recites.

Which passage an overfit model recites from a prompt, and the exact characters it writes,
depend on the last bits of training (a test failed on an AMD EPYC machine because the model
recited another passage of the text), so tests built on these models assert margins: the
loss is below a threshold and most of what the model writes is copied from the text.
"""

import difflib

import torch

from seqlstm.data.streams import StreamBatches
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel


def overfit(model: LSTMLanguageModel, batches: StreamBatches, epochs: int, lr: float) -> None:
    """``epochs`` passes over ``batches``, one Adam step per window on the per-token loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        for batch in batches.epoch(epoch):
            out = model(batch)
            optimizer.zero_grad()
            (out.loss / out.num_tokens).backward()
            optimizer.step()


def recited_fraction(generated: str, passage: str, min_piece: int = 8) -> float:
    """The fraction of the characters of ``generated`` that lie in pieces of at least
    ``min_piece`` characters copied from ``passage`` (in any order, so a model that jumps to
    another part of the passage still recites it). 1.0 for an empty ``generated``."""
    covered, start = 0, 0
    while start < len(generated):
        length = 0
        while start + length < len(generated) and generated[start : start + length + 1] in passage:
            length += 1
        if length >= min_piece:
            covered += length
            start += length
        else:
            start += 1
    return covered / len(generated) if generated else 1.0


def similarity(generated: str, text: str) -> float:
    """difflib's ratio 2 M / (len(generated) + len(text)): 1.0 for the text itself, lower for
    a text with characters wrong, missing or written twice."""
    return difflib.SequenceMatcher(None, generated, text, autojunk=False).ratio()
