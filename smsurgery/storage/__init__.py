"""Model bases in object storage (`s3://`, `gs://`): URLs, file systems, mirrors, publishing.

Nothing here imports TensorFlow, and s3fs/gcsfs are imported only when a
remote URL is used (they are the optional extras `[s3]` and `[gcs]`).
"""
