"""Getting a model in: embedded models, conversions, safe loading, streaming from disk."""
