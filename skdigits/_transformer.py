"""ImageTransformer: reshape rows of pixels into scaled single-channel images."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._compat import _fit_context
from ._images import pixel_range, scale_pixels, validate_images


class ImageTransformer(TransformerMixin, BaseEstimator):
    """Reshape pixel rows into single-channel float32 images scaled to 0..1.

    ``fit`` learns the image shape and the pixel range; ``transform`` returns an array of
    shape ``(n_samples, 1, height, width)`` with pixels mapped by ``(x - low) / span``, the
    same scaling :class:`CNNDigitClassifier` applies on its own. Put the two in a
    :class:`~sklearn.pipeline.Pipeline` to tune both with one search; the pipeline predicts
    exactly what the classifier alone would.

    Parameters
    ----------
    image_shape : tuple of two int, default=None
        ``(height, width)`` of images given as flat rows. ``None`` infers a square shape;
        one side may be -1, as in ``numpy.reshape``. Must agree with image-shaped input.

    Attributes
    ----------
    n_features_in_ : int
        Number of pixels per image seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame seen during ``fit``.
    image_shape_ : tuple of two int
        ``(height, width)`` of the images.
    pixel_range_ : tuple of two float
        ``(low, span)`` of the training pixels.

    See Also
    --------
    CNNDigitClassifier : The classifier that takes these images.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skdigits import ImageTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> images = ImageTransformer().fit_transform(X)
    >>> images.shape, images.dtype, float(images.max())
    ((1797, 1, 8, 8), dtype('float32'), 1.0)
    """

    _parameter_constraints: dict = {"image_shape": [tuple, list, None]}

    def __init__(self, *, image_shape=None):
        self.image_shape = image_shape

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the image shape and pixel range of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Training images.
        y : None
            Ignored.

        Returns
        -------
        self : ImageTransformer
            The fitted transformer.
        """
        X = validate_images(self, X, reset=True)
        self.pixel_range_ = pixel_range(X)
        return self

    def transform(self, X):
        """Return ``X`` as scaled float32 images of shape (n_samples, 1, height, width).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels), (n_samples, height, width) or \
                (n_samples, 1, height, width)
            Images of the shape seen in ``fit``.

        Returns
        -------
        images : ndarray of shape (n_samples, 1, height, width), dtype float32
            The scaled images.
        """
        check_is_fitted(self)
        X = validate_images(self, X, reset=False)
        images = scale_pixels(X.astype(np.float32), *self.pixel_range_)
        return images.reshape(len(images), 1, *self.image_shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
