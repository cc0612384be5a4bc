"""Quality metrics: evaluation classifier, FID/KID/precision-recall, PSNR/SSIM/PBMP, and
the PCA reconstruction ceiling.

See ``docs/metrics.md``.
"""

from lightgen.metrics.classifier import (
    SmallCNN,
    colour_randomised,
    default_cache_dir,
    load_or_train_classifier,
    predict,
    train_classifier,
)
from lightgen.metrics.fid import (
    extract_features,
    frechet_distance,
    frechet_distance_from_moments,
    generative_scores,
    kernel_inception_distance,
    mmd2_unbiased,
    precision_recall,
    torchscript_features,
)
from lightgen.metrics.image import class_accuracy, pbmp, psnr, ssim
from lightgen.metrics.pca import pca_basis, pca_project, pca_reconstruction

__all__ = [
    "SmallCNN",
    "class_accuracy",
    "colour_randomised",
    "default_cache_dir",
    "extract_features",
    "frechet_distance",
    "frechet_distance_from_moments",
    "generative_scores",
    "kernel_inception_distance",
    "load_or_train_classifier",
    "mmd2_unbiased",
    "pbmp",
    "pca_basis",
    "pca_project",
    "pca_reconstruction",
    "precision_recall",
    "predict",
    "psnr",
    "ssim",
    "torchscript_features",
    "train_classifier",
]
