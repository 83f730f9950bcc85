"""Everything that needs the TensorFlow runtime; import these modules lazily."""
