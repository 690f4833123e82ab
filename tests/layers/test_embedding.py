"""SharedEmbedding and CharCNN against brute force and hand-written values."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqlstm.layers.embedding import CharCNN, SharedEmbedding
from seqlstm.text.tokenizer import SubwordTokenizer


def _random_segmentation(generator: torch.Generator, batch: int, contiguous: bool):
    """Random word_index [B, T] (-1 on padding) and the number of words W."""
    rows, num_words = [], 0
    for _ in range(batch):
        words = int(torch.randint(0, 6, (1,), generator=generator))
        row = []
        for w in range(words):
            row += [w] * int(torch.randint(1, 4, (1,), generator=generator))
        if not contiguous and row:
            row = [row[i] for i in torch.randperm(len(row), generator=generator)]
        rows.append(row)
        num_words = max(num_words, words)
    length = max(1, max(len(r) for r in rows))
    word_index = torch.full((batch, length), -1)
    for b, row in enumerate(rows):
        word_index[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    return word_index, max(num_words, 1)


def _brute_force_pool(subwords: torch.Tensor, word_index: torch.Tensor, num_words: int, how: str):
    batch, length, dim = subwords.shape
    out = torch.zeros(batch, num_words, dim)
    for b in range(batch):
        for w in range(num_words):
            positions = [t for t in range(length) if word_index[b, t] == w]
            if positions:
                picked = subwords[b, positions]
                out[b, w] = picked[0] if how == "first" else picked.mean(0)
    return out


def test_forward_shape_and_padding_row():
    torch.manual_seed(0)
    emb = SharedEmbedding(50, 8, pad_id=0)
    ids = torch.tensor([[5, 7, 0, 0], [1, 2, 3, 4]])
    out = emb(ids)
    assert out.shape == (2, 4, 8) and emb.output_dim == 8 == emb.word_output_dim
    assert torch.equal(out, emb.token_embedding.weight[ids])
    assert torch.all(out[0, 2:] == 0)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    emb = SharedEmbedding(20, 64, dropout=0.5)
    ids = torch.arange(1, 20).unsqueeze(0)
    emb.train()
    assert (emb(ids) == 0).float().mean() > 0.3
    emb.eval()
    assert torch.equal(emb(ids), emb.token_embedding.weight[ids])


@pytest.mark.parametrize("pooling", ["first", "mean"])
@pytest.mark.parametrize("contiguous", [True, False])
def test_pooling_matches_brute_force(pooling, contiguous):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    emb = SharedEmbedding(30, 6, pooling=pooling)
    for _ in range(25):
        word_index, num_words = _random_segmentation(generator, batch=4, contiguous=contiguous)
        token_ids = torch.randint(1, 30, word_index.shape, generator=generator)
        token_ids[word_index < 0] = 0
        got = emb.words(token_ids, word_index, num_words)
        expected = _brute_force_pool(emb.token_embedding(token_ids), word_index, num_words, pooling)
        assert got.shape == (4, num_words, 6)
        torch.testing.assert_close(got, expected)


def test_pooling_gradients_reach_only_pooled_subwords():
    torch.manual_seed(0)
    emb = SharedEmbedding(10, 4, pooling="first")
    token_ids = torch.tensor([[3, 4, 5, 6]])
    word_index = torch.tensor([[0, 0, 1, 1]])
    emb.words(token_ids, word_index, 2).sum().backward()
    rows_with_grad = emb.token_embedding.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert rows_with_grad == [3, 5]  # the first subword of each word


def _char_batch(words: list[list[int]], width: int) -> torch.Tensor:
    out = torch.zeros(1, len(words), width, dtype=torch.long)
    for w, chars in enumerate(words):
        out[0, w, : len(chars)] = torch.tensor(chars)
    return out


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_char_cnn_matches_unpadded_convolution(kernel_size):
    torch.manual_seed(0)
    cnn = CharCNN(40, char_embedding_dim=7, num_filters=11, kernel_size=kernel_size)
    words = [[5], [3, 9, 12], [1, 2, 3, 4, 5, 6, 7, 8], [39, 39]]
    got = cnn(_char_batch(words, width=10))[0]
    for w, chars in enumerate(words):
        x = cnn.embedding(torch.tensor(chars)).T.unsqueeze(0)  # [1, E, L], no padding chars
        conv = F.conv1d(x, cnn.conv.weight, cnn.conv.bias, padding=kernel_size // 2)
        torch.testing.assert_close(got[w], conv[0].max(dim=1).values)


def test_char_cnn_computes_repeated_words_once_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    cnn = CharCNN(40, char_embedding_dim=5, num_filters=9, kernel_size=3)
    vocab = [[4, 8, 15], [16], [23, 4, 2, 2, 2], [], [7, 7]]
    rows = [[vocab[i] for i in (0, 1, 0, 3, 4, 0)], [vocab[i] for i in (2, 4, 4, 1, 3, 3)]]
    batch = torch.cat([_char_batch(row, width=6) for row in rows])  # [2, 6, 6]
    got = cnn(batch)
    got.pow(2).sum().backward()
    deduplicated = [p.grad.clone() for p in cnn.parameters()]
    cnn.zero_grad()
    one_at_a_time = torch.stack(  # brute force: every position convolved on its own
        [torch.cat([cnn(_char_batch([word], width=6))[0] for word in row]) for row in rows]
    )
    one_at_a_time.pow(2).sum().backward()
    torch.testing.assert_close(got, one_at_a_time)
    for p, grad in zip(cnn.parameters(), deduplicated, strict=True):
        torch.testing.assert_close(grad, p.grad)
    assert torch.equal(got[0, 0], got[0, 2]) and torch.equal(got[1, 4], got[1, 5])


def test_char_cnn_ignores_padding():
    torch.manual_seed(0)
    cnn = CharCNN(40, char_embedding_dim=5, num_filters=9, kernel_size=3)
    words = [[4, 8, 15], [16], [23, 4, 2, 2, 2], []]
    short = cnn(_char_batch(words, width=5))
    long = cnn(_char_batch(words, width=17))
    torch.testing.assert_close(short, long)
    with torch.no_grad():
        cnn.embedding.weight[0].fill_(100.0)  # even a non-zero pad row changes nothing
    torch.testing.assert_close(cnn(_char_batch(words, width=9)), short)
    assert torch.all(short[0, 3] == 0)  # a word of padding only
    with pytest.raises(ValueError, match="odd"):
        CharCNN(10, kernel_size=4)


def test_words_concatenates_subwords_chars_and_word_table():
    torch.manual_seed(0)
    emb = SharedEmbedding(
        30, 6, char_vocab_size=20, char_filters=5, word_vocab_size=12, word_embedding_dim=3
    )
    assert emb.word_output_dim == 6 + 5 + 3
    token_ids = torch.tensor([[4, 5, 6, 0], [7, 8, 9, 10]])
    word_index = torch.tensor([[0, 0, 1, -1], [0, 1, 2, 2]])
    char_ids = torch.randint(1, 20, (2, 3, 4))
    char_ids[0, 2] = 0  # the first sentence has two words
    word_ids = torch.tensor([[3, 4, 0], [5, 6, 7]])
    out = emb.words(token_ids, word_index, 3, char_ids=char_ids, word_ids=word_ids)
    assert out.shape == (2, 3, 14)
    torch.testing.assert_close(out[1, :, :6], emb.token_embedding(torch.tensor([7, 8, 9])))
    torch.testing.assert_close(out[..., 6:11], emb.char_cnn(char_ids))
    torch.testing.assert_close(out[..., 11:], emb.word_embedding(word_ids))
    assert torch.all(out[0, 2] == 0)  # the padding word is all zeros

    with pytest.raises(ValueError, match="char_ids is required"):
        emb.words(token_ids, word_index, 3, word_ids=word_ids)
    with pytest.raises(ValueError, match="word_ids has shape"):
        emb.words(token_ids, word_index, 3, char_ids=char_ids, word_ids=word_ids[:, :2])
    with pytest.raises(ValueError, match="num_words is 2"):
        emb.words(token_ids, word_index, 2, char_ids=char_ids[:, :2], word_ids=word_ids[:, :2])
    with pytest.raises(ValueError, match="no such table"):
        SharedEmbedding(30, 6).words(token_ids, word_index, 3, word_ids=word_ids)


def test_state_dict_names_are_stable_and_shared():
    config = dict(char_vocab_size=20, char_filters=5, word_vocab_size=12, word_embedding_dim=3)
    emb = SharedEmbedding(30, 6, **config)
    assert set(emb.state_dict()) == {
        "token_embedding.weight",
        "char_cnn.embedding.weight",
        "char_cnn.conv.weight",
        "char_cnn.conv.bias",
        "word_embedding.weight",
    }
    assert set(SharedEmbedding(30, 6).state_dict()) == {"token_embedding.weight"}
    # e.g. a tagger's embedding moved into another model built with the same sizes
    other = SharedEmbedding(30, 6, **config)
    other.load_state_dict(emb.state_dict())
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(other(ids), emb(ids))


def test_tie_shares_the_parameter():
    torch.manual_seed(0)
    emb = SharedEmbedding(30, 6)
    output = nn.Linear(6, 30)
    emb.tie(output)
    assert output.weight is emb.token_embedding.weight
    model = nn.ModuleDict({"emb": emb, "out": output})
    assert sum(p is emb.token_embedding.weight for p in model.parameters()) == 1
    before = emb.token_embedding.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # the loss reaches the shared matrix only through the output layer
    loss = F.cross_entropy(output(torch.randn(4, 6)), torch.tensor([1, 2, 3, 4]))
    loss.backward()
    optimizer.step()
    assert not torch.equal(emb.token_embedding.weight, before)
    assert torch.equal(output.weight, emb.token_embedding.weight)
    with pytest.raises(ValueError, match="cannot tie"):
        emb.tie(nn.Linear(6, 31))


def test_from_tokenizer_with_encode_words():
    torch.manual_seed(0)
    lines = [f"the {w} saw a {v} ." for w in ("dog", "cat") for v in ("bird", "boat")]
    tok = SubwordTokenizer.train(lines * 20, 290, model_type="bpe")
    emb = SharedEmbedding.from_tokenizer(tok, 8, pooling="first")
    assert emb.token_embedding.num_embeddings == len(tok)
    assert emb.token_embedding.padding_idx == tok.pad_id
    sentences = [["the", "dog", "saw", "😀"], ["a", "cat"]]
    encoded = [tok.encode_words(words) for words in sentences]
    length = max(len(ids) for ids, _ in encoded)
    token_ids = torch.full((2, length), tok.pad_id)
    word_index = torch.full((2, length), -1)
    for b, (ids, index) in enumerate(encoded):
        token_ids[b, : len(ids)] = torch.tensor(ids)
        word_index[b, : len(ids)] = torch.tensor(index)
    out = emb.words(token_ids, word_index, num_words=4)
    assert out.shape == (2, 4, 8)
    first_of_emoji = encoded[0][0][encoded[0][1].index(3)]
    torch.testing.assert_close(out[0, 3], emb.token_embedding.weight[first_of_emoji])


def test_init_word_embedding_from_vectors():
    table = torch.randn(11, 4, generator=torch.Generator().manual_seed(0))
    emb = SharedEmbedding(30, 6, word_vocab_size=11, word_embedding_dim=4)
    emb.init_word_embedding(table, freeze=True)
    assert torch.equal(emb.word_embedding.weight, table)
    assert not emb.word_embedding.weight.requires_grad
    with pytest.raises(ValueError, match="vectors have shape"):
        emb.init_word_embedding(table[:, :3])
    with pytest.raises(ValueError, match="no word table"):
        SharedEmbedding(30, 6).init_word_embedding(table)
