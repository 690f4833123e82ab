"""The classic LSTM examples: sequence classification and time-series forecasting."""
