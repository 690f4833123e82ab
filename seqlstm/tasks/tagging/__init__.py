"""Sequence labelling: the BiLSTM-CRF tagger and its document context."""
