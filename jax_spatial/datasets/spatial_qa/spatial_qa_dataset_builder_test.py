"""Builds the `kitti` config from the generated KITTI-layout dummy data and reads it back."""

import tensorflow_datasets as tfds

from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder


class SpatialQATest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = spatial_qa_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["kitti"]
    SPLITS = {"train": 2}  # two frames in dummy_data/kitti/training


if __name__ == "__main__":
    tfds.testing.test_main()
