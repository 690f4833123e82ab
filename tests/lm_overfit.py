"""Train a language model by hand (Adam, TBPTT steps): for the tests that overfit a text."""

import torch

from seqlstm.data.streams import StreamBatches
from seqlstm.tasks.language_modeling.language_model import LSTMLanguageModel
from seqlstm.tasks.language_modeling.tbptt import TBPTTStep


def overfit(model: LSTMLanguageModel, batches: StreamBatches, epochs: int, lr: float) -> None:
    """``epochs`` passes over ``batches``, one Adam step per batch on the per-token loss."""
    step = TBPTTStep()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        for batch in batches.epoch(epoch):
            out = step(model, batch)
            optimizer.zero_grad()
            (out.loss / out.num_tokens).backward()
            optimizer.step()
