"""Text before any model: the subword tokenizer, the word splitter for raw text, vocabularies and
chunk tag schemes."""
