"""The `spatial_qa_clips` TFDS builder folder (`tfds build jax_spatial/datasets/spatial_qa_clips`).

Import `jax_spatial.datasets.spatial_qa_clips.spatial_qa_clips_dataset_builder` to register the
builder. Not imported here: `tfds build` loads the builder file as
`spatial_qa_clips.spatial_qa_clips_dataset_builder`, and a second import under the package's
full name would register `spatial_qa_clips` twice.
"""
