"""TensorFlow Serving's side of a model: REST and gRPC requests, tf.Example, warmup files, models.config, batching."""
