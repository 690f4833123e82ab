"""Translation: the attention LSTM encoder-decoder and its batched search."""
