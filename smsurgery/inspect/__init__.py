"""Reading a model and reporting on it: `show`, `diff`, `scan`, `check`. Never starts TensorFlow."""
