"""Plans for what goes in front of or after a signature, checked without TensorFlow.

Image decoding, tf.Example parsing and labels are planned here; the TensorFlow
side that builds them lives in `smsurgery.graph`.
"""
