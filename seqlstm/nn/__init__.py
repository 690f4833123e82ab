"""Recurrent layers written from the equations (see ``seqlstm.nn.lstm``)."""

from seqlstm.nn.lstm import LSTM, GateTrace, LSTMCell, lstm_step

__all__ = ["LSTM", "GateTrace", "LSTMCell", "lstm_step"]
