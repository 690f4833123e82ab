"""seqlstm: LSTM sequence models that share one tokenizer, one embedding layer and one training loop."""
