"""Linear-chain CRF for tagging: loss, constrained Viterbi, n-best paths and token marginals.

The transition, start and end scores are the parameters of a `torchcrf.CRF` (pytorch-crf), so
its state dict and initialisation are pytorch-crf's. On top of them this module adds what
pytorch-crf lacks: sentences of length zero, transition constraints (a tag scheme such as
IOB2 forbids ``O -> I-PER``), decoding that runs batched on the device, the k best paths,
and token marginals from forward-backward.

Shapes: ``B`` sentences, ``T`` time steps (the longest sentence), ``K`` tags.
``mask[b, t]`` is true on the ``lengths[b]`` real tokens of sentence ``b``; masks must be
right-padded (ones then zeros). Left padding is rejected with a ValueError rather than
decoded wrongly. Whatever emissions and tags hold on padded positions is ignored, even NaN.

Constraints hold everywhere, not only in decoding: the partition function, the gold path
score and the marginals are those of a CRF over allowed paths only (constrained training as
in Lample et al., 2016), so the loss, the decoder and the marginals describe one distribution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchcrf import CRF

from seqlstm.text import tag_schemes

# A forbidden transition scores this in the sum-product recursions (partition, marginals).
# exp(-1e4) underflows to exactly 0 even in float64, so forbidden paths carry no probability;
# unlike -inf it keeps logsumexp and its gradient finite when a constraint set leaves a tag
# unreachable. Max-product decoding uses -inf instead, so it can never pick a forbidden path.
_FORBIDDEN = -1e4


class LinearChainCRF(nn.Module):
    """A linear-chain CRF over ``num_tags`` tags with optional transition constraints.

    Args:
        num_tags: K.
        allowed_transitions: BoolTensor[K, K]; ``[i, j]`` false forbids tag j right after tag i.
        allowed_start: BoolTensor[K]; false forbids a sentence starting with that tag.
        allowed_end: BoolTensor[K]; false forbids a sentence ending with that tag.
    Missing constraints allow everything. They are buffers, so they travel with the state dict.
    """

    def __init__(
        self,
        num_tags: int,
        allowed_transitions: Tensor | None = None,
        allowed_start: Tensor | None = None,
        allowed_end: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.crf = CRF(num_tags, batch_first=True)
        self.allowed_transitions: Tensor
        self.allowed_start: Tensor
        self.allowed_end: Tensor
        for name, value, shape in (
            ("allowed_transitions", allowed_transitions, (num_tags, num_tags)),
            ("allowed_start", allowed_start, (num_tags,)),
            ("allowed_end", allowed_end, (num_tags,)),
        ):
            if value is None:
                value = torch.ones(shape, dtype=torch.bool)
            elif value.shape != shape or value.dtype != torch.bool:
                raise ValueError(
                    f"{name} must be a BoolTensor of shape {list(shape)}, "
                    f"got {value.dtype} {list(value.shape)}"
                )
            self.register_buffer(name, value.clone())

    @classmethod
    def from_labels(cls, labels: Sequence[str], scheme: str) -> LinearChainCRF:
        """A CRF over ``labels`` (tag i is ``labels[i]``) constrained to valid ``scheme`` paths.

        ``scheme`` is ``"IOB1"``, ``"IOB2"`` or ``"IOBES"``; see seqlstm.text.tag_schemes.
        """
        index = {label: i for i, label in enumerate(labels)}
        if len(index) != len(labels):
            raise ValueError(f"labels must be distinct, got {list(labels)}")
        allowed = torch.zeros(len(labels), len(labels), dtype=torch.bool)
        for previous, current in tag_schemes.allowed_transitions(labels, scheme):
            allowed[index[previous], index[current]] = True
        starts = tag_schemes.allowed_start_labels(labels, scheme)
        ends = tag_schemes.allowed_end_labels(labels, scheme)
        return cls(
            len(labels),
            allowed,
            torch.tensor([label in starts for label in labels]),
            torch.tensor([label in ends for label in labels]),
        )

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # Training.

    def neg_log_likelihood(
        self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None
    ) -> Tensor:
        """Summed negative log-likelihood of the gold ``tags``: a scalar.

        emissions: FloatTensor[B, T, K]; tags: LongTensor[B, T]; mask: BoolTensor[B, T].
        Sentences of length zero contribute 0. Raises ValueError if a gold path breaks the
        constraints (its likelihood would be zero: usually data in another tag scheme).
        """
        emissions, mask, lengths = self._check(emissions, mask, tags)
        self._check_gold_allowed(tags, mask, lengths)
        start, transitions, end = self._scores(_FORBIDDEN)
        log_z = self._log_partition(emissions, mask, lengths, start, transitions, end)
        gold = self._sequence_score(emissions, tags, mask, lengths, start, transitions, end)
        return (log_z - gold).sum()

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """log Z: log-sum-exp of the scores of all allowed paths, FloatTensor[B] (0 if empty)."""
        emissions, mask, lengths = self._check(emissions, mask)
        return self._log_partition(emissions, mask, lengths, *self._scores(_FORBIDDEN))

    def sequence_score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Unnormalised score of ``tags`` [B, T], FloatTensor[B] (0 if empty).

        Start + emissions + transitions + end; each forbidden step adds -1e4.
        """
        emissions, mask, lengths = self._check(emissions, mask, tags)
        start, transitions, end = self._scores(_FORBIDDEN)
        return self._sequence_score(emissions, tags, mask, lengths, start, transitions, end)

    # Decoding.

    def viterbi(self, emissions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Best allowed path of every sentence, batched on the emissions' device.

        emissions: FloatTensor[B, T, K]; mask: BoolTensor[B, T].
        Returns (paths LongTensor[B, T] with -1 on padding, scores FloatTensor[B]), without
        gradient. An empty sentence scores 0; one without any allowed path (possible only with
        constraints that rule out every path of its length) scores -inf and gets only -1s.
        """
        return self._viterbi(*self._check(emissions, mask))

    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """Best allowed path of every sentence as lists of tag indices (``[]`` if empty).

        emissions: FloatTensor[B, T, K]; mask: BoolTensor[B, T]. One transfer to the host.
        """
        emissions, mask, lengths = self._check(emissions, mask)
        paths, _ = self._viterbi(emissions, mask, lengths)
        return [row[:n] for row, n in zip(paths.tolist(), lengths.tolist(), strict=True)]

    def nbest(
        self, emissions: Tensor, mask: Tensor | None = None, k: int = 5
    ) -> tuple[Tensor, Tensor]:
        """The ``k`` best allowed paths of every sentence, best first (list Viterbi).

        emissions: FloatTensor[B, T, K]; mask: BoolTensor[B, T].
        Returns (paths LongTensor[B, k, T], scores FloatTensor[B, k]). Where a sentence has
        fewer than ``k`` allowed paths, the missing ones score -inf and are all -1; padding is
        -1. An empty sentence has exactly one path, the empty one, scoring 0.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        emissions, mask, lengths = self._check(emissions, mask)
        batch, steps, num_tags = emissions.shape
        empty_scores = emissions.new_full((k,), -math.inf)
        empty_scores[0] = 0.0
        if steps == 0:
            paths = torch.full((batch, k, 0), -1, device=emissions.device)
            return paths, empty_scores.expand(batch, k)
        start, transitions, end = self._scores(-math.inf)
        first = start + emissions[:, 0]  # [B, K]
        # score[b, j, r]: the r-th best prefix ending in tag j; absent prefixes hold -inf.
        score = first.new_full((batch, num_tags, k), -math.inf)
        score[:, :, 0] = first
        # Back-pointers index the flattened (previous tag, rank) grid: tag * k + rank.
        identity = torch.arange(num_tags * k, device=emissions.device).view(num_tags, k)
        history = []  # per step t >= 1: LongTensor[B, K, k]
        for t in range(1, steps):
            # [B, K_prev, k, K_next] -> best k over (K_prev, k) for each next tag
            step = score.unsqueeze(3) + transitions.unsqueeze(1) + emissions[:, t, None, None, :]
            best, previous = step.flatten(1, 2).topk(k, dim=1)  # [B, k, K]
            keep = mask[:, t, None, None]
            score = torch.where(keep, best.transpose(1, 2), score)
            history.append(torch.where(keep, previous.transpose(1, 2), identity))
        scores, flat = (score + end.unsqueeze(1)).flatten(1).topk(k, dim=1)  # [B, k]
        tags = [flat // k]
        for previous in reversed(history):
            flat = previous.flatten(1).gather(1, flat)
            tags.append(flat // k)
        paths = torch.stack(tags[::-1], dim=2)  # [B, k, T]
        paths = paths.masked_fill(~mask.unsqueeze(1) | scores.isneginf().unsqueeze(2), -1)
        return paths, torch.where((lengths > 0).unsqueeze(1), scores, empty_scores)

    # Marginals.

    def marginals(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """P(tag of token t = j | sentence) by forward-backward in log space.

        emissions: FloatTensor[B, T, K]; mask: BoolTensor[B, T].
        Returns FloatTensor[B, T, K]: rows sum to 1 on real tokens and are 0 on padding.
        """
        emissions, mask, lengths = self._check(emissions, mask)
        batch, steps, num_tags = emissions.shape
        if steps == 0:
            return emissions.new_zeros(batch, 0, num_tags)
        start, transitions, end = self._scores(_FORBIDDEN)
        alphas = self._alphas(emissions, mask, start, transitions)
        # beta[b, t, i]: log-sum-exp of the scores of every continuation after tag i at t.
        beta = end.expand(batch, num_tags)
        betas = [beta]
        for t in range(steps - 1, 0, -1):
            step = torch.logsumexp(transitions + (emissions[:, t] + beta).unsqueeze(1), dim=2)
            beta = torch.where(mask[:, t].unsqueeze(1), step, end)  # t == length: last token
            betas.append(beta)
        betas = torch.stack(betas[::-1], dim=1)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)
        probabilities = (alphas + betas - log_z[:, None, None]).exp()
        return probabilities.masked_fill(~mask.unsqueeze(2), 0.0)

    def path_marginals(self, emissions: Tensor, mask: Tensor | None, paths: Tensor) -> Tensor:
        """Marginal probability of each chosen tag: FloatTensor[B, T], 0 where paths < 0.

        paths: LongTensor[B, T], e.g. from viterbi (-1 on padding). An entity's confidence can
        be the product or minimum over its tokens.
        """
        probabilities = self.marginals(emissions, mask)
        if paths.shape != probabilities.shape[:2]:
            raise ValueError(
                f"paths must have shape {list(probabilities.shape[:2])}, got {list(paths.shape)}"
            )
        chosen = probabilities.gather(2, paths.clamp(min=0).unsqueeze(2)).squeeze(2)
        return chosen.masked_fill(paths < 0, 0.0)

    # Internals: inputs here are already checked.

    def _scores(self, forbidden: float) -> tuple[Tensor, Tensor, Tensor]:
        """(start [K], transitions [K, K], end [K]) with forbidden entries set to ``forbidden``."""
        return (
            self.crf.start_transitions.masked_fill(~self.allowed_start, forbidden),
            self.crf.transitions.masked_fill(~self.allowed_transitions, forbidden),
            self.crf.end_transitions.masked_fill(~self.allowed_end, forbidden),
        )

    @torch.no_grad()
    def _viterbi(self, emissions: Tensor, mask: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """See viterbi: a loop over time only, never over sentences, with no host sync."""
        batch, steps, num_tags = emissions.shape
        device = emissions.device
        if steps == 0:
            return torch.full((batch, 0), -1, device=device), emissions.new_zeros(batch)
        if emissions.element_size() < 4:
            # Half-precision sums tie far too often, and bfloat16 has no exact ranks above 256.
            emissions = emissions.float()
        start, transitions, end = self._scores(-math.inf)
        # Batch innermost, [T, K, B]: the max over the previous tag then reduces an outer
        # dimension, which vectorises over the batch; torch.max with indices over a K-wide
        # dimension is several times slower. Back-pointers are found after the loop instead.
        columns = emissions.permute(1, 2, 0).contiguous()  # [T, K, B]
        into = transitions.unsqueeze(2)  # [K_prev, K_next, 1]
        score = start.unsqueeze(1) + columns[0]  # [K, B]
        scores = [score]
        for emission in columns[1:]:
            # [K_prev, K_next, B]: (score + transition) + emission, in torchcrf's order
            score = (score.unsqueeze(1) + into).add_(emission).amax(dim=0)
            scores.append(score)
        # The recursion ran on through padding (zero emissions): read each sentence's scores
        # at its last token.
        scores = torch.stack(scores)  # [T, K, B]
        sentences = torch.arange(batch, device=device)
        score, tag = (scores[lengths.clamp(min=1) - 1, :, sentences] + end).max(dim=1)

        # Back-pointers for all steps at once [T - 1, K_next, B]: redoing the same sums gives
        # bitwise the same floats, and the first previous tag whose sum equals the max is the
        # one torch.max, and so CRF.decode, picks. O(B T K^2) memory, transient. (In-place
        # float ops: comparisons into bool tensors are several times slower.)
        sums = (scores[:-1].unsqueeze(2) + into).add_(columns[1:].unsqueeze(1))
        rank = torch.arange(num_tags, 0, -1, dtype=sums.dtype, device=device).view(-1, 1, 1)
        hits = sums.eq_(scores[1:].unsqueeze(1)).mul_(rank)  # rank of the tag where equal, else 0
        # NaN emissions match nothing: the clamp keeps the index in range all the same.
        previous = (num_tags - hits.amax(dim=1)).long().clamp_(max=num_tags - 1)
        # As flat indices into the previous step's [K, B] scores, so that one `take` per step
        # follows them; on padding they point to the same tag, down to each last token.
        flat = torch.where(
            mask.t()[1:].unsqueeze(1),
            previous * batch + sentences,
            torch.arange(num_tags * batch, device=device).view(num_tags, batch),
        ).flatten(1)
        position = tag * batch + sentences
        positions = [position]
        for pointers in reversed(flat.unbind(0)):
            position = pointers.take(position)
            positions.append(position)
        paths = torch.stack(positions[::-1], dim=1) // batch
        paths = paths.masked_fill(~mask | score.isneginf().unsqueeze(1), -1)
        return paths, torch.where(lengths > 0, score, 0.0)

    def _alphas(
        self, emissions: Tensor, mask: Tensor, start: Tensor, transitions: Tensor
    ) -> Tensor:
        """Forward log-scores FloatTensor[B, T, K], carried unchanged across padding."""
        alpha = start + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            step = alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1)  # [B, K, K]
            alpha = torch.where(mask[:, t].unsqueeze(1), torch.logsumexp(step, dim=1), alpha)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1)

    def _log_partition(
        self,
        emissions: Tensor,
        mask: Tensor,
        lengths: Tensor,
        start: Tensor,
        transitions: Tensor,
        end: Tensor,
    ) -> Tensor:
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        alphas = self._alphas(emissions, mask, start, transitions)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)
        return torch.where(lengths > 0, log_z, 0.0)

    def _sequence_score(
        self,
        emissions: Tensor,
        tags: Tensor,
        mask: Tensor,
        lengths: Tensor,
        start: Tensor,
        transitions: Tensor,
        end: Tensor,
    ) -> Tensor:
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        # Padding emissions are zero (see _check), so tag 0 there adds nothing.
        tags = tags.masked_fill(~mask, 0)
        score = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).sum(dim=1)
        steps = transitions[tags[:, :-1], tags[:, 1:]].masked_fill(~mask[:, 1:], 0.0)
        last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        score = score + steps.sum(dim=1) + start[tags[:, 0]] + end[last]
        return torch.where(lengths > 0, score, 0.0)

    def _check(
        self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Validate shapes and padding; return (emissions zeroed on padding, mask, lengths [B])."""
        if emissions.dim() != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(
                f"emissions must have shape [B, T, {self.num_tags}], got {list(emissions.shape)}"
            )
        batch, steps, _ = emissions.shape
        if mask is None:
            mask = torch.ones(batch, steps, dtype=torch.bool, device=emissions.device)
        elif mask.shape != (batch, steps):
            raise ValueError(f"mask must have shape {[batch, steps]}, got {list(mask.shape)}")
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        right_padded = torch.arange(steps, device=mask.device) < lengths.unsqueeze(1)
        if not torch.equal(mask, right_padded):
            row = int((mask != right_padded).any(dim=1).nonzero()[0])
            raise ValueError(
                f"mask row {row} is {mask[row].int().tolist()}: masks must be right-padded "
                "(ones then zeros); left padding is not supported"
            )
        if tags is not None:
            if tags.shape != (batch, steps):
                raise ValueError(f"tags must have shape {[batch, steps]}, got {list(tags.shape)}")
            bad = mask & ((tags < 0) | (tags >= self.num_tags))
            if bad.any():
                b, t = bad.nonzero()[0].tolist()
                raise ValueError(
                    f"tag {int(tags[b, t])} at sentence {b}, position {t} is outside "
                    f"0..{self.num_tags - 1}"
                )
        # Zeroing the padding keeps NaN or inf there out of the results and the gradients.
        return emissions.masked_fill(~mask.unsqueeze(2), 0.0), mask, lengths

    def _check_gold_allowed(self, tags: Tensor, mask: Tensor, lengths: Tensor) -> None:
        if tags.shape[1] == 0:
            return
        tags = tags.masked_fill(~mask, 0)
        last = tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        forbidden = mask & torch.cat(
            [
                ~self.allowed_start[tags[:, :1]],
                ~self.allowed_transitions[tags[:, :-1], tags[:, 1:]],
            ],
            dim=1,
        )
        bad_end = (lengths > 0) & ~self.allowed_end[last]
        if forbidden.any():
            b, t = forbidden.nonzero()[0].tolist()
            where = "start with" if t == 0 else f"go from tag {int(tags[b, t - 1])} to"
            raise ValueError(
                f"gold tags of sentence {b} {where} tag {int(tags[b, t])} at position {t}, "
                "which the constraints forbid (tags in another scheme?)"
            )
        if bad_end.any():
            b = int(bad_end.nonzero()[0])
            raise ValueError(
                f"gold tags of sentence {b} end with tag {int(last[b])}, which the constraints "
                "forbid (tags in another scheme?)"
            )
