"""The BiLSTM-CRF tagger as ONNX graphs, and a runtime that tags with them without torch.

``seqlstm export --model DIR --format onnx --out DIR2`` (or
:func:`seqlstm.onnx_tagger.export.export_onnx`, which imports torch) writes a tagger's network
up to its emission scores as two ONNX graphs, with its CRF, tokenizer, vocabularies and config
(seqlstm.onnx_tagger.directory); :class:`OnnxTagger` (seqlstm.onnx_tagger.runtime) loads that
directory and tags with onnxruntime, numpy and sentencepiece, giving the tagger's tags.
"""

from seqlstm.onnx_tagger.runtime import OnnxTagger

__all__ = ["OnnxTagger"]
