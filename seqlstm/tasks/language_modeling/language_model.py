"""LSTMLanguageModel: an AWD-LSTM language model over the shared SentencePiece tokenizer.

Merity, Keskar & Socher (2018), "Regularizing and Optimizing LSTM Language Models":

    token ids [B, T]
    -> SharedEmbedding, with embedding dropout (whole word types)   [B, T, E]
    -> locked dropout -> LSTM 1 -> locked dropout -> ... -> LSTM n   [B, T, H_n]
    -> locked dropout -> projection to E if H_n != E (tied only)     [B, T, E]
    -> output layer, its weight tied to the embedding table          [B, T, V]

Each layer is a torch.nn.LSTM (cuDNN on a GPU) whose hidden-to-hidden matrix gets DropConnect
in training. Layer sizes may differ: layers 1..n-1 have hidden_size units, the last one
`output_size` (by default the embedding size when tied, so no projection is needed).

The same class models characters, subwords or words: the level is the tokenizer's model type
(SentencePiece "char", "bpe" or "unigram"; a word-level model is a unigram/BPE model whose
vocabulary holds whole words). `evaluate` reports perplexity per token, bits per character
and perplexity per word for any of them; see its docstring for the normalisations.

The task protocol (`seqlstm.tasks.base`): `encode(rows)` frames each text as `BOS ids EOS`;
training lays the framed texts end to end as one stream (`StreamBatches.from_examples`) and
`forward(LMBatch)` reads its truncated-BPTT windows with the LSTM state carried from one
window to the next inside the model, so the Trainer (and DDP, which wraps `forward`) needs no
step function of its own. The carried state goes into the Trainer's checkpoints through
`training_state_dict` / `load_training_state_dict` (the protocol's `CarriesTrainingState`),
so a run killed mid-epoch and resumed equals the uninterrupted run. `logits(input_ids,
hidden)` is the network itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlstm.data.dataset_rows import text_rows
from seqlstm.data.streams import LMBatch, frame_texts, join_stream, text_batch
from seqlstm.errors import DataError
from seqlstm.layers.embedding import SharedEmbedding
from seqlstm.metrics import bits_per_character, perplexity, perplexity_per_word
from seqlstm.pretrained import PretrainedModel
from seqlstm.tasks.base import StepOutput, evaluating
from seqlstm.tasks.language_modeling.tbptt import Hidden, detach_hidden, evaluate_stream, token_nll
from seqlstm.text.tokenizer import SubwordTokenizer, normalize

# A row of text: {"text": str} (what `seqlstm.data.load(..., "text")` gives), or a bare str.
TextRow = Mapping[str, object] | str

# The most tokens one `generate` call adds to a prompt: a bound on the work of one call (a
# minute or so of a CPU for the recipes' models); a longer text is generated in several calls,
# each continuing the text so far.
MAX_NEW_TOKENS = 65_536


@dataclass
class LanguageModelConfig:
    """Sizes and regularisation. The defaults are AWD-LSTM's word-level WikiText-2 setup, the
    subword LM recipe's (seqlstm.recipes.wikitext2_lm). The character LM recipe
    (seqlstm.recipes.tinyshakespeare_char_lm) sets its own: a character model wants an untied,
    wider output and little embedding dropout, so one set of defaults cannot serve both. A
    model directory saved without a field loads with its ``legacy_defaults`` value
    (seqlstm.pretrained).
    """

    # the defaults before they became the recipe's: what a config.json lacking the field was
    # trained with
    legacy_defaults: ClassVar[dict[str, Any]] = {"dropout_hidden": 0.3}

    embedding_dim: int = 400
    hidden_size: int = 1150  # every layer but the last
    num_layers: int = 3
    output_size: int | None = None  # last layer; None: embedding_dim if tied, else hidden_size
    tie_weights: bool = True
    dropout_embedding: float = 0.1  # drops whole word types from the embedding ("dropoute")
    dropout_input: float = 0.65  # locked dropout on the LSTM input ("dropouti")
    # locked dropout between LSTM layers ("dropouth"): 0.2 in AWD-LSTM's WikiText-2 command
    # (0.3 is the default of its main.py)
    dropout_hidden: float = 0.2
    dropout_output: float = 0.4  # locked dropout on the last layer's output ("dropout")
    weight_drop: float = 0.5  # DropConnect on the hidden-to-hidden matrices ("wdrop")

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        for name in ("dropout_embedding", "dropout_input", "dropout_hidden", "dropout_output"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.weight_drop < 1.0:
            raise ValueError(f"weight_drop must be in [0, 1), got {self.weight_drop}")

    def layer_sizes(self) -> list[int]:
        """Hidden size of each LSTM layer, bottom to top."""
        last = self.output_size
        if last is None:
            last = self.embedding_dim if self.tie_weights else self.hidden_size
        return [self.hidden_size] * (self.num_layers - 1) + [last]


class EmbeddingDropout(nn.Module):
    """Drop whole word types: every occurrence of a dropped type in the batch is zeroed.

    Equivalent to AWD-LSTM's dropout on the rows of the embedding matrix, applied to the
    looked-up vectors instead, so that the embedding module stays a plain lookup. Survivors
    are scaled by 1 / (1 - p).
    """

    def __init__(self, vocab_size: int, p: float) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.p = p

    def forward(self, token_ids: Tensor, embedded: Tensor) -> Tensor:
        """token_ids [B, T], embedded [B, T, E] -> [B, T, E]."""
        if not self.training or self.p == 0.0:
            return embedded
        keep = embedded.new_empty(self.vocab_size).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return embedded * keep[token_ids].unsqueeze(-1)


class LockedDropout(nn.Module):
    """Variational dropout (Gal & Ghahramani, 2016): one mask per sequence for all time steps."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, T, D] -> [B, T, D]."""
        if not self.training or self.p == 0.0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * mask


class WeightDropLSTM(nn.Module):
    """One nn.LSTM layer with DropConnect (Wan et al., 2013) on its hidden-to-hidden matrix.

    The raw matrix stays a registered Parameter (`lstm.weight_hh_l0`); in training a dropped
    copy is made on every forward call, i.e. one mask per window, shared by all time steps and
    all sequences of the batch. In eval mode, or with weight_drop=0, it is nn.LSTM unchanged.
    """

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.weight_drop = weight_drop

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x: [B, T, I], state: (h, c) each [1, B, H] or None (zeros) -> ([B, T, H], (h, c))."""
        if not self.training or self.weight_drop == 0.0:
            return self.lstm(x, state)
        lstm = self.lstm
        weights = [
            lstm.weight_ih_l0,
            F.dropout(lstm.weight_hh_l0, self.weight_drop),
            lstm.bias_ih_l0,
            lstm.bias_hh_l0,
        ]
        # One contiguous buffer, back to back in cuDNN's order (as flatten_parameters lays it
        # out), so cuDNN can use it as it is instead of re-packing the weights on every call.
        flat = torch.cat([w.reshape(-1) for w in weights])
        chunks = flat.split([w.numel() for w in weights])
        weights = [chunk.view_as(w) for chunk, w in zip(chunks, weights, strict=True)]
        if state is None:
            zeros = x.new_zeros(1, x.size(0), lstm.hidden_size)
            state = (zeros, zeros)
        # the functional form of nn.LSTM.forward: has_biases, num_layers, dropout, train,
        # bidirectional, batch_first
        output, h, c = torch.lstm(x, state, weights, True, 1, 0.0, True, False, True)
        return output, (h, c)


class LSTMLanguageModel(PretrainedModel):
    """AWD-LSTM language model; see the module docstring for the architecture.

    logits(input_ids[B, T], hidden) -> (logits[B, T, V], hidden) is the network;
    forward(LMBatch) -> StepOutput is one training window with the state carried from the
    previous one (truncated BPTT, see `forward`).
    """

    config_class = LanguageModelConfig

    def __init__(self, config: LanguageModelConfig, tokenizer: SubwordTokenizer) -> None:
        super().__init__(config, tokenizer)
        vocab_size = len(tokenizer)
        self.embedding = SharedEmbedding(vocab_size, config.embedding_dim, tokenizer.pad_id)
        self.embedding_dropout = EmbeddingDropout(vocab_size, config.dropout_embedding)
        self.input_dropout = LockedDropout(config.dropout_input)
        sizes = config.layer_sizes()
        input_sizes = [self.embedding.output_dim, *sizes[:-1]]
        self.layers = nn.ModuleList(
            WeightDropLSTM(i, h, config.weight_drop)
            for i, h in zip(input_sizes, sizes, strict=True)
        )
        self.hidden_dropout = LockedDropout(config.dropout_hidden)
        self.output_dropout = LockedDropout(config.dropout_output)
        decoder_input = config.embedding_dim if config.tie_weights else sizes[-1]
        self.projection: nn.Module = nn.Identity()
        if sizes[-1] != decoder_input:
            self.projection = nn.Linear(sizes[-1], decoder_input)
        self.decoder = nn.Linear(decoder_input, vocab_size)
        nn.init.zeros_(self.decoder.bias)
        if config.tie_weights:
            self.embedding.tie(self.decoder)
        # The state after the last window that `forward` read, detached: the initial state of
        # the next window. A plain attribute, not a buffer: it is not part of the weights.
        self._carried: Hidden | None = None

    def init_hidden(self, batch_size: int) -> Hidden:
        """The zero state, the same as passing hidden=None."""
        # the embedding table, not the decoder's weight: it has the LSTMs' dtype and device,
        # and stays a float Parameter when the decoder is quantized (seqlstm.quantization)
        weight = self.embedding.token_embedding.weight
        return [
            (weight.new_zeros(1, batch_size, h), weight.new_zeros(1, batch_size, h))
            for h in self.config.layer_sizes()
        ]

    def logits(self, input_ids: Tensor, hidden: Hidden | None = None) -> tuple[Tensor, Hidden]:
        """input_ids: LongTensor[B, T]; hidden: the state after the previous window, or None.

        Returns (logits FloatTensor[B, T, V], the state after the last step of this window).
        """
        x = self.embedding_dropout(input_ids, self.embedding(input_ids))
        x = self.input_dropout(x)
        new_hidden: Hidden = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, None if hidden is None else hidden[i])
            new_hidden.append(state)
            last = i == len(self.layers) - 1
            x = self.output_dropout(x) if last else self.hidden_dropout(x)
        return self.decoder(self.projection(x)), new_hidden

    def forward(self, batch: LMBatch) -> StepOutput:
        """One truncated-BPTT window: (summed nll of its scored targets, their count).

        The window starts from the state the previous call ended in, or from zeros when
        batch.position == 0 (a new pass over the streams: every epoch of `StreamBatches`, and
        every `collate` batch); the state it ends in is kept, detached so that gradients stop
        at the window boundary, for the next call. Feed the windows of one stream in order.
        """
        hidden = None if batch.position == 0 else self._carried
        if hidden is not None and hidden[0][0].size(1) != batch.inputs.size(0):
            raise ValueError(
                f"a window of {batch.inputs.size(0)} rows at position {batch.position} follows "
                f"one of {hidden[0][0].size(1)} rows; a stream's windows must come in order "
                "(and a resumed run needs the batch size and number of processes it was "
                "checkpointed with)"
            )
        logits, hidden = self.logits(batch.inputs, hidden)
        self._carried = detach_hidden(hidden)
        return token_nll(logits, batch.targets)

    def training_state_dict(self) -> dict[str, Tensor]:
        """The state `forward` carries to the next window, for checkpoints (the
        `CarriesTrainingState` hook of `seqlstm.tasks.base`, so that a run resumed mid-epoch
        reads on from the same state): `h/i` and `c/i` FloatTensor[1, B, H_i] of each layer
        i; empty before the first window."""
        if self._carried is None:
            return {}
        state = {}
        for i, (h, c) in enumerate(self._carried):
            state[f"h/{i}"], state[f"c/{i}"] = h, c
        return state

    def load_training_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Carry `state` (what `training_state_dict` gave; empty: none) into the next window.

        Raises ValueError when it does not fit this model: other keys, or shapes other than
        [1, B, H_i] with one B for all layers.
        """
        if not state:
            self._carried = None
            return
        sizes = self.config.layer_sizes()
        expected = {f"{part}/{i}" for i in range(len(sizes)) for part in ("h", "c")}
        if set(state) != expected:
            raise ValueError(
                f"expected the entries {sorted(expected)} of a {len(sizes)}-layer model, "
                f"got {sorted(state)}"
            )
        rows = state["h/0"].shape[1] if state["h/0"].dim() == 3 else -1
        for name in sorted(expected):
            size = sizes[int(name.split("/")[1])]
            if tuple(state[name].shape) != (1, rows, size):
                raise ValueError(
                    f"{name} has shape {tuple(state[name].shape)}, expected (1, B, {size}) "
                    "with one B for every entry"
                )
        device = self.embedding.token_embedding.weight.device
        self._carried = [
            (state[f"h/{i}"].to(device), state[f"c/{i}"].to(device)) for i in range(len(sizes))
        ]

    def encode(self, rows: Iterable[TextRow]) -> list[Tensor]:
        """Each row's text framed as `BOS ids EOS`: one LongTensor[n + 2] per row.

        A row is {"text": str} or a str; one row is one text (a line of a line-based corpus).
        Raises DataError naming the first row that is neither.
        """
        return frame_texts(self.tokenizer, _texts(rows))

    def collate(self, examples: Sequence[Tensor]) -> LMBatch:
        """Encoded texts as one batch of their own, a row each, every row from the zero state.

        LMBatch(inputs, targets LongTensor[B, max_len - 1], position 0), right-padded; so
        `forward(collate(examples))` is the summed nll of the texts each read on its own
        (sentence-level batches, e.g. through `BucketedBatches`). Training on a corpus reads
        the texts as one stream instead: `StreamBatches.from_examples(examples, ...)`.
        """
        return text_batch(examples, self.tokenizer.pad_id, self.tokenizer.bos_id)

    @torch.no_grad()
    def evaluate(
        self,
        rows: Iterable[TextRow],
        batch_size: int = 10,
        bptt: int = 70,
        *,
        text_column: str | None = None,
    ) -> dict[str, float]:
        """Metrics of the rows' texts read as one stream with carried state, no dropout.

        rows as for `encode` ({"text": str} or str, one text each), or a `datasets.Dataset`
        whose `text` column (or `text_column`) holds them (seqlstm.data.dataset_rows); a
        DatasetDict, a lone str or a lone row is a DataError. The stream is the framed texts
        end to end, as in training.

        - nll, perplexity: per scored token (every subword, and EOS once per text).
        - bits_per_character, nats_per_character: the total nll over the characters of the
          normalised texts plus one per text for its EOS (the line break). For a character
          model this is per token up to the word-boundary pieces; it is the number to compare
          across levels. When every text is one line that normalisation leaves alone, the
          count is the length of the original text, newlines included (see `characters`).
        - word_perplexity: exp(total nll / words), words = whitespace-separated words of the
          normalised texts plus one per text for EOS, as WikiText's `<eos>` is counted. The
          total nll of a text does not depend on how it is cut into tokens, so this compares
          subword and word models on the same text.
        - tokens, characters, words: the counts behind these averages.

        Each of the batch_size rows of the stream starts from a fresh state, so a text too
        short to give every row a full bptt window is read in fewer rows (one for a text
        shorter than a window), rather than as many short rows that each lose their context.
        """
        texts = _texts(text_rows(rows, text_column))
        stream = join_stream(frame_texts(self.tokenizer, texts))
        batch_size = max(1, min(batch_size, (stream.numel() - 1) // bptt))
        total_nll, num_tokens = evaluate_stream(self, stream, batch_size, bptt)
        normalized = [normalize(text) for text in texts]
        num_characters = sum(len(text) + 1 for text in normalized)
        num_words = sum(len(text.split()) + 1 for text in normalized)
        return {
            "nll": total_nll / num_tokens,
            "perplexity": perplexity(total_nll, num_tokens),
            "bits_per_character": bits_per_character(total_nll, num_characters),
            "nats_per_character": total_nll / num_characters,
            "word_perplexity": perplexity_per_word(total_nll, num_words),
            "tokens": num_tokens,
            "characters": num_characters,
            "words": num_words,
        }

    @torch.no_grad()
    def generate(
        self,
        prompts: str | list[str],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        multiline: bool = False,
    ) -> str | list[str]:
        """Continue each prompt by up to max_new_tokens tokens; returns prompt + continuation.

        A prompt is read as `BOS prompt` (an empty prompt starts a text from BOS). The result
        is decoded from the prompt's tokens and the new ones together, so it starts with the
        normalised prompt (`normalize(prompt)`) and spaces between the two come out right.
        A continuation stops at EOS (not included); pad and BOS are never generated.
        temperature=0 is greedy decoding; otherwise logits are divided by temperature, cut to
        the top_k most likely tokens and/or the smallest set of probability >= top_p (nucleus),
        and sampled with a torch.Generator seeded by seed (the global RNG if seed is None).

        multiline=True reads and writes text as a sequence of lines, the way `encode_stream`
        frames a line-based corpus: each line of a prompt but the last is read as
        `BOS line EOS` and the last one as `BOS line` (so a prompt ending in a newline starts a
        new line), and generation goes on past EOS: the model is fed EOS and then BOS, as in
        training, and writes the next line. EOS comes out as a newline (it counts as one of
        the max_new_tokens; the BOS after it does not), and lines are normalised one by one.

        Prompts are left-padded into one batch; a row keeps the zero state until its prompt
        starts, so with greedy decoding a prompt's continuation does not depend on the other
        prompts. (Sampled draws depend on the row's position in the batch.)

        max_new_tokens is an integer in [0, MAX_NEW_TOKENS] (65,536) and temperature a finite
        number >= 0; a ValueError says so otherwise.
        """
        if (
            isinstance(max_new_tokens, bool)
            or not isinstance(max_new_tokens, int)
            or not 0 <= max_new_tokens <= MAX_NEW_TOKENS
        ):
            raise ValueError(
                f"max_new_tokens must be an integer in [0, {MAX_NEW_TOKENS}], got "
                f"{max_new_tokens!r}"
            )
        if not 0 <= temperature < float("inf"):  # NaN too: it would make every draw NaN
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        single = isinstance(prompts, str)
        prompt_list = [prompts] if single else list(prompts)
        if not prompt_list:
            return []
        device = self.device
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        tok = self.tokenizer
        with evaluating(self):
            prompt_ids = [self._encode_prompt(p, multiline) for p in prompt_list]
            next_logits, hidden = self._read_prompts(prompt_ids, device)
            batch_size = len(prompt_list)
            finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
            generated = []
            for _ in range(max_new_tokens):
                next_logits[:, [tok.pad_id, tok.bos_id]] = float("-inf")
                token = _pick(next_logits, temperature, top_k, top_p, generator)
                token = token.masked_fill(finished, tok.pad_id)  # decode skips pad
                generated.append(token)
                ended = token == tok.eos_id
                if not multiline:
                    finished |= ended
                    if bool(finished.all()):
                        break
                logits, hidden = self.logits(token.unsqueeze(1), hidden)
                if multiline and bool(ended.any()):
                    logits, hidden = self._start_new_lines(ended, logits, hidden)
                next_logits = logits[:, -1]
        new_ids = torch.stack(generated, dim=1).tolist() if generated else [[]] * len(prompt_ids)
        decode = self._decode_lines if multiline else tok.decode
        texts = [decode(p + n) for p, n in zip(prompt_ids, new_ids, strict=True)]
        return texts[0] if single else texts

    def _encode_prompt(self, prompt: str, multiline: bool) -> list[int]:
        """`BOS prompt`, or with multiline `BOS line EOS ... BOS last_line`."""
        tok = self.tokenizer
        if not multiline:
            return tok.encode(prompt, add_bos=True)
        *complete, last = prompt.split("\n")
        ids = [i for line in complete for i in tok.encode(line, add_bos=True, add_eos=True)]
        return ids + tok.encode(last, add_bos=True)

    def _start_new_lines(
        self, ended: Tensor, logits: Tensor, hidden: Hidden
    ) -> tuple[Tensor, Hidden]:
        """Feed BOS to the rows that just read EOS (BoolTensor[B] ended); others keep theirs."""
        bos = torch.full((ended.numel(), 1), self.tokenizer.bos_id, device=ended.device)
        bos_logits, bos_hidden = self.logits(bos, hidden)
        rows = ended.view(1, -1, 1)
        logits = torch.where(ended.view(-1, 1, 1), bos_logits, logits)
        hidden = [
            (torch.where(rows, h_bos, h), torch.where(rows, c_bos, c))
            for (h_bos, c_bos), (h, c) in zip(bos_hidden, hidden, strict=True)
        ]
        return logits, hidden

    def _decode_lines(self, ids: list[int]) -> str:
        """Text of ids with EOS as the line break (pad and BOS skipped, as by decode)."""
        lines: list[list[int]] = [[]]
        for token_id in ids:
            if token_id == self.tokenizer.eos_id:
                lines.append([])
            else:
                lines[-1].append(token_id)
        return "\n".join(self.tokenizer.decode_batch(lines))

    def _read_prompts(
        self, prompts: list[list[int]], device: torch.device
    ) -> tuple[Tensor, Hidden]:
        """Run the prompts (each starting with BOS) left-padded through the model.

        Returns (logits after each prompt's last token [B, V], state). The padded columns are
        fed one at a time and the state of a row is reset to zero while it is still padding;
        the columns where every row has started go through in one call.
        """
        lengths = [len(p) for p in prompts]
        width = max(lengths)
        ids = torch.full((len(prompts), width), self.tokenizer.pad_id, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
        ids = ids.to(device)
        hidden = self.init_hidden(len(prompts))
        ragged = width - min(lengths)
        for t in range(ragged):
            _, new_hidden = self.logits(ids[:, t : t + 1], hidden)
            started = (ids[:, t] != self.tokenizer.pad_id).view(1, -1, 1)
            # a row that has not started keeps its old state, which is still the zero state
            hidden = [
                (torch.where(started, h, h_old), torch.where(started, c, c_old))
                for (h, c), (h_old, c_old) in zip(new_hidden, hidden, strict=True)
            ]
        logits, hidden = self.logits(ids[:, ragged:], hidden)
        return logits[:, -1], hidden


def _texts(rows: Iterable[TextRow]) -> list[str]:
    """The text of each row ({"text": str} or str); DataError naming the first bad row."""
    texts = []
    for number, row in enumerate(rows):
        text = row.get("text") if isinstance(row, Mapping) else row
        if not isinstance(text, str):
            if not isinstance(row, Mapping):
                got = type(row).__name__
            elif "text" in row:
                got = f"a {type(row).__name__} whose 'text' is {type(text).__name__}"
            else:
                got = f"a {type(row).__name__} with the keys {sorted(map(str, row))}"
            raise DataError(
                f"row {number}: expected a str or a mapping with a 'text' str, got {got}"
            )
        texts.append(text)
    return texts


def _pick(
    logits: Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> Tensor:
    """Next token of each row from logits [B, V]: LongTensor[B]."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the more likely ones already reach top_p; the first always stays
        mass_before = probs.cumsum(dim=-1) - probs
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
