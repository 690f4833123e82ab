"""SharedEmbedding: the input layer shared by the tagger, the translator and the LM.

Subword level (translator, LM): `emb(token_ids)` looks up the SentencePiece pieces.
Word level (tagger): `emb.words(...)` pools the subwords of each word ("first" or "mean")
and concatenates, in this order,

    [ pooled subwords (embedding_dim) | CharCNN (char_filters) | word table (word_embedding_dim) ]

where the last two are optional. Parameter names are stable, so one state_dict fits every
model: `token_embedding.weight`, `char_cnn.embedding.weight`, `char_cnn.conv.weight`,
`char_cnn.conv.bias`, `word_embedding.weight`.

Pretrained vectors for the word table (GloVe or word2vec text) are read by
`seqlstm.data.word_vectors.load_word_vectors` and copied in with `init_word_embedding`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from seqlstm.text.tokenizer import SubwordTokenizer


class CharCNN(nn.Module):
    """Character CNN word features (Ma & Hovy 2016): embed, Conv1d, max over characters.

    Padding characters are masked out of the max, so a word's features do not depend on how
    far its character row is padded; a word made only of padding gets zeros.
    """

    def __init__(
        self,
        char_vocab_size: int,
        char_embedding_dim: int = 25,
        num_filters: int = 50,
        kernel_size: int = 3,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            # an odd kernel with "same" padding keeps one output per character, which the
            # padding mask needs
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pad_id = pad_id
        self.output_dim = num_filters
        self.embedding = nn.Embedding(char_vocab_size, char_embedding_dim, padding_idx=pad_id)
        self.conv = nn.Conv1d(char_embedding_dim, num_filters, kernel_size, padding="same")

    def forward(self, char_ids: Tensor) -> Tensor:
        """char_ids: LongTensor[B, W, C] (pad_id after the end of each word) -> [B, W, F]."""
        batch, words, chars = char_ids.shape
        # A batch repeats most of its words (punctuation, "the", padding rows and, with document
        # context, whole neighbouring sentences), so each distinct character row is convolved
        # once: ten times less work on context batches, and the same numbers.
        rows, inverse = torch.unique(
            char_ids.reshape(batch * words, chars), dim=0, return_inverse=True
        )
        return self._row_features(rows)[inverse].reshape(batch, words, self.output_dim)

    def _row_features(self, rows: Tensor) -> Tensor:
        """rows: LongTensor[N, C], one word's characters each -> [N, F]."""
        is_char = rows != self.pad_id  # [N, C]
        # zeroing padded positions makes them look exactly like the conv's own zero padding,
        # whatever the pad row of the embedding holds
        x = self.embedding(rows) * is_char.unsqueeze(-1)  # [N, C, E]
        features = self.conv(x.transpose(1, 2))  # [N, F, C]
        features = features.masked_fill(~is_char.unsqueeze(1), float("-inf"))
        pooled = features.max(dim=2).values  # [N, F]
        return pooled.masked_fill(~is_char.any(dim=1, keepdim=True), 0.0)


class SharedEmbedding(nn.Module):
    """Subword embedding table plus optional character-CNN and word-table word features."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        pad_id: int = 0,
        dropout: float = 0.0,
        char_vocab_size: int | None = None,
        char_embedding_dim: int = 25,
        char_filters: int = 50,
        char_kernel_size: int = 3,
        word_vocab_size: int | None = None,
        word_embedding_dim: int = 0,
        pooling: Literal["first", "mean"] = "first",
        char_pad_id: int = 0,
        word_pad_id: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
        if word_vocab_size is not None and word_embedding_dim <= 0:
            raise ValueError("word_embedding_dim must be > 0 when word_vocab_size is set")
        self.pad_id = pad_id
        self.pooling = pooling
        self.token_embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        # N(0, 1/D) keeps rows at about unit norm, so a tied output layer starts with logits
        # of order one rather than sqrt(D)
        nn.init.normal_(self.token_embedding.weight, std=embedding_dim**-0.5)
        with torch.no_grad():
            self.token_embedding.weight[pad_id].zero_()
        self.char_cnn = None
        if char_vocab_size is not None:
            self.char_cnn = CharCNN(
                char_vocab_size, char_embedding_dim, char_filters, char_kernel_size, char_pad_id
            )
        self.word_embedding = None
        if word_vocab_size is not None:
            self.word_embedding = nn.Embedding(
                word_vocab_size, word_embedding_dim, padding_idx=word_pad_id
            )
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_tokenizer(
        cls, tokenizer: SubwordTokenizer, embedding_dim: int, **kwargs
    ) -> SharedEmbedding:
        """A SharedEmbedding sized by the tokenizer (vocab_size=len(tokenizer), its pad_id)."""
        return cls(len(tokenizer), embedding_dim, pad_id=tokenizer.pad_id, **kwargs)

    @property
    def output_dim(self) -> int:
        """Feature size of `forward` (subword level)."""
        return self.token_embedding.embedding_dim

    @property
    def word_output_dim(self) -> int:
        """Feature size of `words`: subwords + char CNN + word table, as configured."""
        dim = self.token_embedding.embedding_dim
        if self.char_cnn is not None:
            dim += self.char_cnn.output_dim
        if self.word_embedding is not None:
            dim += self.word_embedding.embedding_dim
        return dim

    def forward(self, token_ids: Tensor) -> Tensor:
        """token_ids: LongTensor[B, T] -> FloatTensor[B, T, D] (dropout applied)."""
        return self.dropout(self.token_embedding(token_ids))

    def words(
        self,
        token_ids: Tensor,
        word_index: Tensor,
        num_words: int,
        char_ids: Tensor | None = None,
        word_ids: Tensor | None = None,
    ) -> Tensor:
        """Word features for tagging.

        token_ids: LongTensor[B, T] subword ids; word_index: LongTensor[B, T], the word of each
        subword (as from `SubwordTokenizer.encode_words`), -1 on padding; num_words: W;
        char_ids: LongTensor[B, W, C], required iff the char CNN is configured;
        word_ids: LongTensor[B, W], required iff the word table is configured.
        Returns FloatTensor[B, W, word_output_dim]; a word with no subword (padding) gets zeros
        in its subword part.
        """
        if token_ids.shape != word_index.shape:
            raise ValueError(
                f"token_ids {tuple(token_ids.shape)} and word_index {tuple(word_index.shape)} "
                "must have the same shape [B, T]"
            )
        if word_index.numel() and int(word_index.max()) >= num_words:
            raise ValueError(
                f"word_index holds {int(word_index.max())} but num_words is {num_words}"
            )
        parts = [self._pool(self.token_embedding(token_ids), word_index, num_words)]
        batch = token_ids.shape[0]
        for name, module, ids, ndim in (
            ("char_ids", self.char_cnn, char_ids, 3),
            ("word_ids", self.word_embedding, word_ids, 2),
        ):
            if module is None:
                if ids is not None:
                    raise ValueError(f"{name} given but this SharedEmbedding has no such table")
                continue
            if ids is None:
                raise ValueError(f"{name} is required: this SharedEmbedding was built with it")
            if ids.dim() != ndim or ids.shape[:2] != (batch, num_words):
                raise ValueError(
                    f"{name} has shape {tuple(ids.shape)}, expected ({batch}, {num_words}"
                    f"{', C' if ndim == 3 else ''})"
                )
            parts.append(module(ids))
        return self.dropout(torch.cat(parts, dim=-1))

    def _pool(self, subwords: Tensor, word_index: Tensor, num_words: int) -> Tensor:
        """subwords [B, T, D], word_index [B, T] -> [B, W, D], one scatter for the batch."""
        batch, length, dim = subwords.shape
        # padding (-1) is sent to an extra column W that is dropped at the end
        target = torch.where(word_index < 0, num_words, word_index)  # [B, T]
        if self.pooling == "first":
            positions = torch.arange(length, device=subwords.device).expand(batch, length)
            first = torch.full((batch, num_words + 1), length, device=subwords.device)
            first.scatter_reduce_(1, target, positions, reduce="amin")
            first = first[:, :num_words]  # [B, W]; == length for a word with no subword
            index = first.clamp(max=length - 1).unsqueeze(-1).expand(-1, -1, dim)
            return subwords.gather(1, index) * (first < length).unsqueeze(-1)
        sums = subwords.new_zeros(batch, num_words + 1, dim)
        sums.scatter_add_(1, target.unsqueeze(-1).expand(-1, -1, dim), subwords)
        counts = subwords.new_zeros(batch, num_words + 1)
        counts.scatter_add_(1, target, torch.ones_like(target, dtype=subwords.dtype))
        return (sums / counts.clamp(min=1).unsqueeze(-1))[:, :num_words]

    def tie(self, linear: nn.Linear) -> None:
        """Make linear.weight the very Parameter of the subword table (output layer tying)."""
        if linear.weight.shape != self.token_embedding.weight.shape:
            raise ValueError(
                f"cannot tie: linear.weight is {tuple(linear.weight.shape)}, the embedding is "
                f"{tuple(self.token_embedding.weight.shape)} ([vocab_size, embedding_dim])"
            )
        linear.weight = self.token_embedding.weight

    def init_word_embedding(self, vectors: Tensor, freeze: bool = False) -> None:
        """Copy pretrained vectors [word_vocab_size, word_embedding_dim] into the word table."""
        if self.word_embedding is None:
            raise ValueError("this SharedEmbedding has no word table (word_vocab_size=None)")
        if vectors.shape != self.word_embedding.weight.shape:
            raise ValueError(
                f"vectors have shape {tuple(vectors.shape)}, the word table is "
                f"{tuple(self.word_embedding.weight.shape)}"
            )
        with torch.no_grad():
            self.word_embedding.weight.copy_(vectors)
        self.word_embedding.weight.requires_grad_(not freeze)
