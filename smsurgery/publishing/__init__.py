"""Writing a new version safely.

The publish target, the atomic publisher, splicing, and the one verifier's comparison.
"""
