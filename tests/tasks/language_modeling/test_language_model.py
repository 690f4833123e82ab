"""LSTMLanguageModel: the AWD-LSTM model, the task protocol, its metrics and generation."""

import math

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from lm_overfit import overfit, similarity

from seqlstm.data.streams import IGNORE_INDEX, StreamBatches, encode_stream
from seqlstm.errors import DataError
from seqlstm.tasks.base import TaskModel
from seqlstm.tasks.language_modeling.language_model import (
    EmbeddingDropout,
    LanguageModelConfig,
    LockedDropout,
    LSTMLanguageModel,
    WeightDropLSTM,
    _pick,
)
from seqlstm.tasks.language_modeling.tbptt import evaluate_stream
from seqlstm.text.tokenizer import SubwordTokenizer, normalize
from seqlstm.training import Trainer, TrainerConfig

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "pack my box with five dozen liquor jugs",
    "how vexingly quick daft zebras jump",
]
NO_DROPOUT = dict(
    dropout_embedding=0.0,
    dropout_input=0.0,
    dropout_hidden=0.0,
    dropout_output=0.0,
    weight_drop=0.0,
)


@pytest.fixture(scope="module")
def char_tokenizer():
    return SubwordTokenizer.train(TEXTS, vocab_size=300, model_type="char")


def tiny_model(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    config = LanguageModelConfig(
        **{"embedding_dim": 12, "hidden_size": 20, "num_layers": 2, **NO_DROPOUT, **overrides}
    )
    return LSTMLanguageModel(config, tokenizer).eval()


def greedy_by_brute_force(model, prompt, max_new_tokens):
    """Greedy decoding that re-reads the whole sequence from scratch at every step."""
    tok = model.tokenizer
    ids = tok.encode(prompt, add_bos=True)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model.logits(torch.tensor([ids]))[0][0, -1]
            logits[[tok.pad_id, tok.bos_id]] = -math.inf
            next_id = int(logits.argmax())
            if next_id == tok.eos_id:
                break
            ids.append(next_id)
    return tok.decode(ids)


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("model_type", ["char", "bpe", "unigram"])
def test_uniform_model_has_perplexity_equal_to_vocabulary_size(model_type):
    tok = SubwordTokenizer.train(
        TEXTS, vocab_size=320, model_type=model_type, hard_vocab_limit=False
    )
    model = tiny_model(tok)
    with torch.no_grad():
        model.decoder.weight.zero_()  # tied: the embedding is zeroed too, which is fine
        model.decoder.bias.zero_()
    metrics = model.evaluate(TEXTS, batch_size=2, bptt=7)
    vocab_size = len(tok)
    assert metrics["perplexity"] == pytest.approx(vocab_size, rel=1e-5)
    assert metrics["nll"] == pytest.approx(math.log(vocab_size), rel=1e-6)
    # by hand: every scored token (the text's tokens and one EOS per text) costs log V nats
    num_tokens = sum(len(tok.encode(t)) + 1 for t in TEXTS)
    num_chars = sum(len(normalize(t)) + 1 for t in TEXTS)
    num_words = sum(len(t.split()) + 1 for t in TEXTS)
    total = num_tokens * math.log(vocab_size)
    assert metrics["bits_per_character"] == pytest.approx(total / num_chars / math.log(2))
    assert metrics["nats_per_character"] == pytest.approx(total / num_chars)
    assert (metrics["tokens"], metrics["characters"]) == (num_tokens, num_chars)
    assert metrics["words"] == num_words
    # compared in log space: exp would turn float32 rounding of the nll into a visible error
    assert math.log(metrics["word_perplexity"]) == pytest.approx(total / num_words, rel=1e-6)


def test_a_text_shorter_than_a_window_is_read_in_one_row(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=5)
    one_row = model.evaluate([TEXTS[0]], batch_size=1, bptt=100)
    # 64 rows of one token each would all start from a fresh state; the rows are capped
    assert model.evaluate([TEXTS[0]], batch_size=64, bptt=100) == one_row
    assert model.evaluate([TEXTS[0]], batch_size=64, bptt=20) != one_row  # two rows of 20+


def test_two_halves_with_carried_state_equal_one_pass(char_tokenizer):
    model = tiny_model(char_tokenizer, num_layers=3, hidden_size=24, weight_drop=0.5)
    ids = encode_stream(char_tokenizer, TEXTS)[:60].view(2, 30)
    with torch.no_grad():
        logits, hidden = model.logits(ids)
        first, mid = model.logits(ids[:, :13])
        second, end = model.logits(ids[:, 13:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), logits)
    for (h, c), (h2, c2) in zip(hidden, end, strict=True):
        torch.testing.assert_close(h2, h)
        torch.testing.assert_close(c2, c)


def test_weight_tying_shares_the_tensor_and_a_projection_bridges_sizes(char_tokenizer):
    model = tiny_model(char_tokenizer)
    assert model.decoder.weight is model.embedding.token_embedding.weight
    assert model.config.layer_sizes() == [20, 12]  # last layer = embedding size, no projection
    assert isinstance(model.projection, torch.nn.Identity)

    projected = tiny_model(char_tokenizer, output_size=8)
    assert projected.decoder.weight is projected.embedding.token_embedding.weight
    assert projected.projection.weight.shape == (12, 8)
    logits, hidden = projected.logits(torch.tensor([[2, 5, 6]]))
    assert logits.shape == (1, 3, len(char_tokenizer))
    assert [h.shape for h, _ in hidden] == [(1, 1, 20), (1, 1, 8)]

    untied = tiny_model(char_tokenizer, tie_weights=False)
    assert untied.decoder.weight is not untied.embedding.token_embedding.weight
    assert untied.config.layer_sizes() == [20, 20]


def test_weight_tying_and_outputs_survive_save_and_load(char_tokenizer, tmp_path):
    model = tiny_model(char_tokenizer, output_size=8)
    model.save_pretrained(tmp_path / "lm")
    loaded = LSTMLanguageModel.from_pretrained(tmp_path / "lm").eval()
    assert loaded.config == model.config
    assert loaded.decoder.weight is loaded.embedding.token_embedding.weight
    ids = torch.tensor([[2, 7, 8, 9, 10]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits(ids)[0], model.logits(ids)[0])
    with torch.no_grad():  # still one tensor: a change to the embedding moves the output layer
        loaded.embedding.token_embedding.weight[5] += 1.0
    assert torch.equal(loaded.decoder.weight[5], loaded.embedding.token_embedding.weight[5])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="num_layers"):
        LanguageModelConfig(num_layers=0)
    with pytest.raises(ValueError, match="dropout_hidden"):
        LanguageModelConfig(dropout_hidden=1.0)
    with pytest.raises(ValueError, match="weight_drop"):
        LanguageModelConfig(weight_drop=-0.1)


# ----------------------------------------------------------------------------- regularisation


def test_weight_drop_mask_changes_per_call_in_training_and_is_off_in_eval():
    torch.manual_seed(0)
    layer = WeightDropLSTM(5, 7, weight_drop=0.5)
    assert "lstm.weight_hh_l0" in dict(layer.named_parameters())
    x = torch.randn(3, 6, 5)
    layer.train()
    out1, _ = layer(x)
    out2, _ = layer(x)
    assert not torch.allclose(out1, out2)

    # the training output is exactly nn.LSTM's with the dropped matrix drawn by F.dropout
    torch.manual_seed(123)
    out, (h, c) = layer(x)
    torch.manual_seed(123)
    dropped = F.dropout(layer.lstm.weight_hh_l0, 0.5)
    reference = torch.nn.LSTM(5, 7, batch_first=True)
    reference.load_state_dict(layer.lstm.state_dict())
    with torch.no_grad():
        reference.weight_hh_l0.copy_(dropped)
    ref_out, (ref_h, ref_c) = reference(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close((h, c), (ref_h, ref_c))
    # gradients reach the raw matrix, and not through the dropped entries
    out.sum().backward()
    grad = layer.lstm.weight_hh_l0.grad
    was_dropped = dropped == 0
    assert was_dropped.any() and (grad[was_dropped] == 0).all()
    assert (grad[~was_dropped] != 0).any()

    layer.eval()
    eval_out, _ = layer(x)
    torch.testing.assert_close(eval_out, layer.lstm(x)[0])
    torch.testing.assert_close(layer(x)[0], eval_out)


def test_embedding_dropout_drops_word_types_and_locked_dropout_shares_the_mask_over_time():
    torch.manual_seed(0)
    drop = EmbeddingDropout(vocab_size=6, p=0.5).train()
    ids = torch.tensor([[1, 2, 3, 1, 2, 3, 4, 5, 4, 5] * 3])
    out = drop(ids, torch.ones(1, 30, 4))
    kept = out[0, :, 0]
    for token in range(1, 6):  # every occurrence of a type shares its fate
        assert len(set(kept[ids[0] == token].tolist())) == 1
    assert set(kept.tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(ids, torch.ones(1, 30, 4)), torch.ones(1, 30, 4))

    locked = LockedDropout(0.5).train()
    out = locked(torch.ones(4, 9, 8))
    assert (out == out[:, :1]).all()  # the same mask at every time step
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert not torch.equal(out[0], out[1])  # but a different one per sequence


# ----------------------------------------------------------------------------- generation


def test_greedy_generation_matches_brute_force_and_batching(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=3)
    prompts = ["the quick", "", "a much longer prompt than the others", "zeb"]
    expected = [greedy_by_brute_force(model, p, 15) for p in prompts]
    assert model.generate(prompts, 15, temperature=0) == expected
    assert [model.generate(p, 15, temperature=0) for p in prompts] == expected
    # an empty prompt starts from BOS alone
    assert model.generate("", 15, temperature=0) == expected[1]
    assert model.generate(list(reversed(prompts)), 15, temperature=0) == expected[::-1]


def test_top_k_one_and_a_tiny_nucleus_are_greedy(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=1)
    prompts = ["the", "pack my"]
    greedy = model.generate(prompts, 20, temperature=0)
    assert model.generate(prompts, 20, temperature=1.0, top_k=1, seed=5) == greedy
    assert model.generate(prompts, 20, temperature=1.0, top_p=1e-6, seed=5) == greedy


def test_sampling_is_deterministic_with_a_seed_and_leaves_the_global_rng_alone(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=2)
    torch.manual_seed(0)
    expected_draw = torch.rand(1)
    torch.manual_seed(0)
    first = model.generate(["the", ""], 30, temperature=1.5, seed=7)
    assert torch.equal(torch.rand(1), expected_draw)
    assert model.generate(["the", ""], 30, temperature=1.5, seed=7) == first
    assert model.generate(["the", ""], 30, temperature=1.5, seed=8) != first
    assert model.generate("the", 5, top_k=3, top_p=0.9).startswith("the")


def always_eos_model(tok):
    """A tiny model whose output layer ignores the input and strongly favours EOS."""
    model = tiny_model(tok)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
        model.decoder.bias[tok.eos_id] = 20.0
    return model


def test_generation_stops_at_eos_and_never_emits_pad_or_bos(char_tokenizer):
    tok = char_tokenizer
    model = always_eos_model(tok)
    assert model.generate(["the", ""], 10, temperature=0) == ["the", ""]
    with torch.no_grad():
        model.decoder.bias[tok.eos_id] = 0.0
        model.decoder.bias[[tok.pad_id, tok.bos_id]] = 50.0  # would win if they were allowed
        model.decoder.bias[tok.piece_to_id("x")] = 20.0
    assert model.generate("", 6, temperature=0) == "xxxxxx"
    assert model.generate("", 0) == ""


def multiline_greedy_by_brute_force(model, prompt, max_new_tokens):
    """Greedy multi-line decoding by re-reading everything, with BOS fed after every EOS."""
    tok = model.tokenizer
    *complete, last = prompt.split("\n")
    ids = [i for line in complete for i in tok.encode(line, add_bos=True, add_eos=True)]
    ids += tok.encode(last, add_bos=True)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model.logits(torch.tensor([ids]))[0][0, -1]
            logits[[tok.pad_id, tok.bos_id]] = -math.inf
            ids.append(int(logits.argmax()))
            if ids[-1] == tok.eos_id:
                ids.append(tok.bos_id)
    lines, line = [], []
    for i in ids:
        if i == tok.eos_id:
            lines.append(tok.decode(line))
            line = []
        else:
            line.append(i)
    return "\n".join([*lines, tok.decode(line)])


def test_multiline_generation_writes_eos_as_a_newline_and_goes_on(char_tokenizer):
    model = always_eos_model(char_tokenizer)
    # every new token is EOS: one newline each; the BOS fed after it is not counted
    assert model.generate("ab  c", 3, temperature=0, multiline=True) == "ab c\n\n\n"
    assert model.generate("ab", 3, temperature=0) == "ab"
    # prompt lines are read as lines; a final newline starts a new (here empty) line
    assert model.generate("x\n y \n", 1, temperature=0, multiline=True) == "x\ny\n\n"
    assert model.generate("", 0, multiline=True) == ""


def test_multiline_greedy_generation_matches_brute_force_with_eos_in_the_middle(char_tokenizer):
    tok = char_tokenizer
    model = tiny_model(tok, seed=4)
    with torch.no_grad():
        model.decoder.bias[tok.eos_id] = 1.5  # often, but not always, the likeliest
    prompts = ["the quick\nbrown", "", "zeb\n"]
    expected = [multiline_greedy_by_brute_force(model, p, 40) for p in prompts]
    assert sum(text.count("\n") for text in expected) >= 4  # EOS was generated and passed
    assert model.generate(prompts, 40, temperature=0, multiline=True) == expected
    assert [model.generate(p, 40, temperature=0, multiline=True) for p in prompts] == expected


def test_a_multiline_text_is_learnt_and_generated_back_with_its_newlines(char_tokenizer):
    model = tiny_model(char_tokenizer, embedding_dim=32, hidden_size=64, num_layers=1)
    stream = encode_stream(char_tokenizer, TEXTS)
    batches = StreamBatches(stream, 1, bptt=len(stream), pad_id=0, bos_id=char_tokenizer.bos_id)
    overfit(model, batches, epochs=200, lr=0.03)
    assert model.evaluate(TEXTS, batch_size=1)["nll"] < 0.1  # a uniform guess: log V = 5.7
    # margins, not one exact continuation: the last bits of training differ between machines
    text = "\n".join(TEXTS) + "\n"
    generated = model.generate("", len(stream), temperature=0, multiline=True)
    assert similarity(generated[: len(text)], text) > 0.9
    assert generated.count("\n") >= len(TEXTS)  # EOS was written as a newline, and passed
    following = model.generate(TEXTS[0] + "\n", 20, temperature=0, multiline=True)
    assert similarity(following[len(TEXTS[0]) + 1 :], TEXTS[1][:20]) > 0.8


def test_pick_keeps_the_nucleus_and_samples_in_proportion():
    logits = torch.tensor([[0.5, 0.3, 0.2]]).log().expand(4000, 3)
    generator = torch.Generator().manual_seed(0)
    picks = _pick(logits, 1.0, None, 0.7, generator)
    # 0.5 + 0.3 >= 0.7, so token 2 is cut and the rest renormalised: 0.625 / 0.375
    assert set(picks.tolist()) == {0, 1}
    assert (picks == 1).float().mean().item() == pytest.approx(0.375, abs=0.03)
    picks = _pick(logits, 1.0, 2, None, generator)
    assert set(picks.tolist()) == {0, 1}


# ----------------------------------------------------------------------------- training


def test_a_tiny_text_is_overfitted_and_generated_back(char_tokenizer):
    text = TEXTS[0]
    model = tiny_model(char_tokenizer, embedding_dim=32, num_layers=1)
    stream = encode_stream(char_tokenizer, [text])
    batches = StreamBatches(stream, 1, bptt=16, pad_id=0, bos_id=char_tokenizer.bos_id)
    overfit(model, batches, epochs=60, lr=0.03)
    metrics = model.evaluate([text], batch_size=1, bptt=16)
    assert metrics["nll"] < 0.05
    # "the " starts two phrases: only state carried from BOS across windows tells them apart.
    # A model that confused them would go round "the quick brown fox jumps over the quick..."
    # until max_new_tokens, which similarity scores near 0.6.
    assert similarity(model.generate("", 100, temperature=0), text) > 0.9
    assert similarity(model.generate("the quick", 100, temperature=0), text) > 0.9
    assert model.training  # generate and evaluate restore the mode


def test_the_trainer_trains_it_through_stream_batches(char_tokenizer, tmp_path):
    model = tiny_model(char_tokenizer, num_layers=2, dropout_hidden=0.1, weight_drop=0.2)
    assert isinstance(model, TaskModel)
    examples = model.encode({"text": text} for text in TEXTS)
    batches = StreamBatches.from_examples(examples, 2, 10, pad_id=0, bos_id=char_tokenizer.bos_id)
    before = model.evaluate(TEXTS, batch_size=2)["nll"]
    config = TrainerConfig(
        output_dir=str(tmp_path),
        max_epochs=15,
        lr=0.02,
        device="cpu",
        save_checkpoints=False,
        progress_bar=False,
    )

    def evaluate(m: LSTMLanguageModel) -> dict[str, float]:
        return {"loss": m.evaluate(TEXTS, batch_size=2)["nll"]}

    best = Trainer(model, config, batches, evaluate_fn=evaluate).fit()
    assert best["loss"] < before - 1.0


# ----------------------------------------------------------------------------- task protocol


def test_encode_frames_each_row_and_names_a_bad_row(char_tokenizer):
    model = tiny_model(char_tokenizer)
    tok = char_tokenizer
    expected = [[tok.bos_id, *tok.encode(text), tok.eos_id] for text in [*TEXTS, ""]]
    rows = [{"text": text} for text in [*TEXTS, ""]]
    for given in (rows, [*TEXTS, ""], Dataset.from_list(rows)):
        examples = model.encode(given)
        assert [e.tolist() for e in examples] == expected
        assert all(e.dtype == torch.long for e in examples)
    with pytest.raises(DataError, match=r"row 1: .* got a dict whose 'text' is int"):
        model.encode([{"text": "ok"}, {"text": 3}])
    with pytest.raises(DataError, match=r"row 2: .* got a dict with the keys \['tokens'\]"):
        model.encode(["a", "b", {"tokens": ["a"]}])
    with pytest.raises(DataError, match="row 0: .* got list"):
        model.evaluate([["a", "b"]])


def test_evaluate_reads_dict_rows_and_strings_alike(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=6)
    expected = model.evaluate(TEXTS, batch_size=2, bptt=9)
    assert model.evaluate([{"text": t} for t in TEXTS], batch_size=2, bptt=9) == expected
    rows = Dataset.from_dict({"text": TEXTS})
    assert model.evaluate(rows, batch_size=2, bptt=9) == expected


def old_tbptt_step(hidden, model, batch):
    """The TBPTTStep of seqlstm 0.1 that forward replaces, written out: (output, new hidden)."""
    if batch.position == 0:
        hidden = None
    logits, new_hidden = model.logits(batch.inputs, hidden)
    loss = F.cross_entropy(
        logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss, [(h.detach(), c.detach()) for h, c in new_hidden]


def test_forward_is_the_old_step_function_bit_for_bit_with_dropout(char_tokenizer):
    """Same losses and gradients, dropout masks included, over two epochs (the state is
    reset at position 0 and carried, detached, between windows)."""
    stream = encode_stream(char_tokenizer, TEXTS)
    batches = StreamBatches(stream, 2, bptt=7, pad_id=0, bos_id=char_tokenizer.bos_id)
    dropouts = dict(dropout_embedding=0.1, dropout_input=0.2, dropout_hidden=0.2)
    runs = []
    for new in (True, False):
        model = tiny_model(char_tokenizer, **dropouts, dropout_output=0.3, weight_drop=0.4)
        model.train()
        torch.manual_seed(11)
        hidden, trace = None, []
        for epoch in range(2):
            for batch in batches.epoch(epoch):
                model.zero_grad()
                if new:
                    out = model(batch)
                    loss = out.loss
                    assert int(out.num_tokens) == int((batch.targets != IGNORE_INDEX).sum())
                else:
                    loss, hidden = old_tbptt_step(hidden, model, batch)
                loss.backward()
                trace.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
        runs.append(trace)
    assert len(runs[0]) == 2 * len(batches) > 4
    for (loss, grads), (old_loss, old_grads) in zip(*runs, strict=True):
        assert torch.equal(loss, old_loss)
        assert all(torch.equal(g, o) for g, o in zip(grads, old_grads, strict=True))


def test_forward_carries_detached_state_and_resets_at_position_zero(char_tokenizer):
    model = tiny_model(char_tokenizer)
    stream = encode_stream(char_tokenizer, TEXTS)
    batches = StreamBatches(stream, 2, bptt=5, pad_id=0, bos_id=char_tokenizer.bos_id)
    model.eval()
    with torch.no_grad():
        epochs = [[model(b) for b in batches.epoch(e)] for e in range(2)]
    # carried through the epoch, the windows add up to one pass over the stream...
    total_nll, num_tokens = evaluate_stream(model, stream, batch_size=2, bptt=1000)
    assert sum(float(out.loss) for out in epochs[0]) == pytest.approx(total_nll, rel=1e-5)
    assert sum(int(out.num_tokens) for out in epochs[0]) == num_tokens
    # ...and the state is reset at the start of the next epoch, which repeats the first
    for first, second in zip(*epochs, strict=True):
        assert float(second.loss) == pytest.approx(float(first.loss), rel=1e-6)
    # an evaluation between two windows (the Trainer's) leaves the carried state alone
    with torch.no_grad():
        windows = list(batches.epoch(3))
        model(windows[0])
        model.evaluate(TEXTS[:2], batch_size=1, bptt=3)
        assert float(model(windows[1]).loss) == pytest.approx(float(epochs[0][1].loss), rel=1e-6)

    # in training, gradients stop at the window boundary: backward works window after window
    model.train()
    for batch in batches.epoch(2):
        out = model(batch)
        (out.loss / out.num_tokens).backward()
    assert model.decoder.weight.grad is not None
    # a window from another stream cannot continue this one
    other = StreamBatches(stream, 3, bptt=5, pad_id=0, bos_id=char_tokenizer.bos_id)
    later = list(other.epoch(0))[1]
    with pytest.raises(ValueError, match="a window of 3 rows at position 5 follows one of 2"):
        model(later)


def test_forward_of_collate_is_the_nll_of_each_text_on_its_own(char_tokenizer):
    model = tiny_model(char_tokenizer, seed=8)
    examples = model.encode(TEXTS)
    batch = model.collate(examples)
    longest = max(len(e) for e in examples)
    assert batch.position == 0 and batch.inputs.shape == (len(TEXTS), longest - 1)
    by_hand, count = 0.0, 0
    with torch.no_grad():
        out = model(batch)
        for example in examples:  # each text alone, from the zero state
            logits, _ = model.logits(example[:-1].unsqueeze(0))
            by_hand += float(F.cross_entropy(logits[0], example[1:], reduction="sum"))
            count += len(example) - 1
    assert float(out.loss) == pytest.approx(by_hand, rel=1e-5)
    assert int(out.num_tokens) == count  # padding is not scored, EOS is
    with pytest.raises(DataError, match="at least one text"):
        model.collate([])
