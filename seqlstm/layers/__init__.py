"""Neural network layers shared by the tasks: embedding, encoders, attention, decoders, the CRF
and the LSTM written from its equations."""
