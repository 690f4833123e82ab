"""Constrained Viterbi decoding in numpy: the decoder of seqlstm.layers.crf without torch.

The scores are those of a trained LinearChainCRF (pytorch-crf's start, transition and end
scores) with its constraints applied the way its decoder applies them: a forbidden start,
transition or end scores -inf, so no forbidden path is ever chosen. Ties go to the lowest tag
index, the choice torch.max and so LinearChainCRF.viterbi make. Shapes: ``B`` sentences,
``T`` time steps (the longest sentence), ``K`` tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ViterbiDecoder:
    """A CRF's decoding scores with the constraints in them: ``start`` [K], ``transitions``
    [K, K] (``[i, j]``: tag j right after tag i) and ``end`` [K], float32, -inf where
    forbidden."""

    start: np.ndarray
    transitions: np.ndarray
    end: np.ndarray

    @classmethod
    def constrained(
        cls,
        start: np.ndarray,
        transitions: np.ndarray,
        end: np.ndarray,
        allowed_start: np.ndarray,
        allowed_transitions: np.ndarray,
        allowed_end: np.ndarray,
    ) -> ViterbiDecoder:
        """The decoder of a CRF's scores (float [K], [K, K], [K]) under its constraints
        (bool arrays of the same shapes, false where forbidden)."""
        num_tags = len(start)
        for name, value, shape in (
            ("transitions", transitions, (num_tags, num_tags)),
            ("end", end, (num_tags,)),
            ("allowed_start", allowed_start, (num_tags,)),
            ("allowed_transitions", allowed_transitions, (num_tags, num_tags)),
            ("allowed_end", allowed_end, (num_tags,)),
        ):
            if np.shape(value) != shape:
                raise ValueError(
                    f"{name} must have shape {list(shape)}, got {list(np.shape(value))}"
                )

        def masked(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
            return np.where(allowed, np.asarray(scores, np.float32), np.float32(-np.inf))

        return cls(
            masked(start, allowed_start),
            masked(transitions, allowed_transitions),
            masked(end, allowed_end),
        )

    @property
    def num_tags(self) -> int:
        return len(self.start)

    def decode(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[list[int]]:
        """The best allowed path of every sentence as lists of tag indices ([] if empty).

        emissions: float32 [B, T, K], right-padded (whatever padding holds is ignored);
        lengths: the B sentence lengths, each at most T.
        """
        batch, steps, num_tags = emissions.shape
        if num_tags != self.num_tags:
            raise ValueError(f"emissions have {num_tags} tags, the decoder {self.num_tags}")
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (batch,) or (lengths > steps).any() or (lengths < 0).any():
            raise ValueError(f"lengths must be {batch} numbers in 0..{steps}, got {lengths}")
        if steps == 0:
            return [[] for _ in range(batch)]
        emissions = emissions.astype(np.float32, copy=False)
        # score[b, j]: the best prefix of sentence b ending in tag j; past a sentence's end it
        # stays as it was at its last word, where the end scores are added
        score = self.start + emissions[:, 0]
        pointers = np.zeros((steps, batch, num_tags), dtype=np.int64)
        rows = np.arange(batch)
        for t in range(1, steps):
            # [B, K_prev, K_next]: (score + transition) + emission, in the torch decoder's order
            step = (score[:, :, None] + self.transitions) + emissions[:, t, None, :]
            pointers[t] = step.argmax(axis=1)  # the first maximum, as torch.max picks
            inside = (t < lengths)[:, None]
            score = np.where(inside, step.max(axis=1), score)
        tags = (score + self.end).argmax(axis=1)
        paths = np.zeros((batch, steps), dtype=np.int64)
        for t in range(steps - 1, -1, -1):
            inside = t < lengths
            paths[inside, t] = tags[inside]
            if t > 0:
                # a sentence still past its end keeps its last tag until it reaches it
                tags = np.where(t < lengths, pointers[t, rows, tags], tags)
        return [paths[b, :n].tolist() for b, n in enumerate(lengths.tolist())]
