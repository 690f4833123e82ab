"""Language modelling: the AWD-LSTM language model and its truncated-BPTT steps."""
