"""The pure core: reading SavedModels from their protos, without the TensorFlow runtime.

Protos in, typed views and graph models out; every other package builds on these.
"""
