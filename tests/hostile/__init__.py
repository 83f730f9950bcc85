"""A corpus of broken and hostile SavedModels, generated at test time (see corpus.py)."""
