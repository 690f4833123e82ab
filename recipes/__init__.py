"""The recipes: plain scripts (``python recipes/NAME.py --help``), each one task end to end.

From the repository root they also import as modules (``from recipes import conll2003_ner``),
which is how the tests and benchmarks call their functions.
"""
