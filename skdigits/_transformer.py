"""ImageTransformer: reshape rows of pixels into scaled images (n, channels, height, width)."""

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._compat import _fit_context
from ._images import (
    _check_same_image_shape,
    _flatten_images,
    pixel_range,
    scale_pixels,
    validate_images,
)

# What every refusal of DataFrame output ends with: how to get a DataFrame anyway.
_FLAT_ROWS_HINT = (
    "For a DataFrame of scaled pixels, one row per image, flatten the images yourself: "
    "pandas.DataFrame(images.reshape(len(images), -1), "
    "columns=transformer.get_feature_names_out())"
)


# auto_wrap_output_keys=None: scikit-learn would otherwise wrap transform to build a DataFrame
# from its output, and fail on 4-D images with a message about 2-d input; set_output and the
# refusal of DataFrame output are defined here instead.
class ImageTransformer(
    OneToOneFeatureMixin, TransformerMixin, BaseEstimator, auto_wrap_output_keys=None
):
    """Reshape pixel rows into float32 images scaled to 0..1.

    ``fit`` learns the image shape, the channels and the pixel range; ``transform`` returns
    an array of shape ``(n_samples, n_channels_, height, width)`` (1 channel for grey
    images, 3 or 4 for RGB or RGBA) with pixels mapped by ``(x - low) / span``, the
    same scaling :class:`CNNDigitClassifier` applies on its own. Put the two in a
    :class:`~sklearn.pipeline.Pipeline` to tune both with one search; the pipeline predicts
    exactly what the classifier alone would. ``inverse_transform`` maps images back to rows
    of pixels on the training scale.

    Each output pixel comes from one input column, so :meth:`get_feature_names_out` returns
    the input feature names, as scikit-learn's scalers do. The 4-D images cannot be a
    DataFrame: ``set_output(transform="pandas")`` raises a ValueError, and so does
    ``transform`` under ``sklearn.set_config(transform_output="pandas")`` unless
    ``set_output(transform="default")`` was called on the transformer.

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
    n_channels_ : int
        Channels of the images: 1 (grey), 3 (RGB) or 4 (RGBA).
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

        Raises
        ------
        ValueError
            If ``sklearn.set_config(transform_output=...)`` asks for DataFrames and
            ``set_output(transform="default")`` was not called on this transformer.
        """
        check_is_fitted(self)
        self._check_array_output()
        X = validate_images(self, X, reset=False)
        images = scale_pixels(X.astype(np.float32), *self.pixel_range_)
        return images.reshape(len(images), self.n_channels_, *self.image_shape_)

    def inverse_transform(self, X):
        """Return images ``X`` as rows of pixels on the scale of the training pixels.

        Undoes :meth:`transform`: each pixel is mapped by ``x * span + low`` and each image
        flattened to a row, so ``inverse_transform(transform(X))`` equals ``X`` up to float32
        precision. Round the result (``numpy.rint``) to recover integer pixels such as uint8.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1, height, width), (n_samples, height, width) \
                or (n_samples, n_pixels)
            Scaled images of the shape seen in ``fit``, such as the output of
            :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_pixels)
            Rows of pixels on the training scale; float32 for float32 images (the output of
            ``transform``), float64 otherwise.

        Examples
        --------
        >>> import numpy as np
        >>> from skdigits import ImageTransformer
        >>> X = np.array([[0, 255, 128, 64]], dtype=np.uint8)
        >>> transformer = ImageTransformer().fit(X)
        >>> rows = transformer.inverse_transform(transformer.transform(X))
        >>> np.rint(rows).astype(np.uint8)
        array([[  0, 255, 128,  64]], dtype=uint8)
        """
        check_is_fitted(self)
        X, carried_shape = _flatten_images(X)
        _check_same_image_shape(self, X, carried_shape)
        X = check_array(X, dtype=[np.float64, np.float32])
        low, span = self.pixel_range_
        # In the dtype of X: numpy keeps float32 arrays float32 against Python floats.
        return X * span + low

    def get_feature_names_out(self, input_features=None):
        """Return one name per output pixel: the input feature names.

        ``transform`` maps each input column to one pixel, so the names are those of
        scikit-learn's scalers: ``feature_names_in_`` if ``fit`` saw a DataFrame, else
        ``x0`` to ``x{n_features_in_ - 1}``. The name of the pixel at ``(row, col)`` is at
        index ``row * width + col``, the order of ``images.reshape(len(images), -1)``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input feature names; must equal ``feature_names_in_`` if ``fit`` saw a
            DataFrame, and have ``n_features_in_`` entries.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The names of the ``height * width`` output pixels.

        Examples
        --------
        >>> import numpy as np
        >>> from skdigits import ImageTransformer
        >>> transformer = ImageTransformer().fit(np.zeros((1, 4)))
        >>> transformer.get_feature_names_out()
        array(['x0', 'x1', 'x2', 'x3'], dtype=object)
        """
        return super().get_feature_names_out(input_features)

    def set_output(self, *, transform=None):
        """Set the output container of ``transform``: only arrays, as images are 4-D.

        ``set_output(transform="default")`` makes this transformer return arrays even where
        ``sklearn.set_config(transform_output="pandas")`` asks every other transformer for
        DataFrames. A DataFrame cannot hold images of shape (n_samples, 1, height, width), so
        ``"pandas"`` and ``"polars"`` raise a ValueError.

        Parameters
        ----------
        transform : {"default"} or None, default=None
            ``"default"`` for arrays; ``None`` leaves the configuration unchanged.

        Returns
        -------
        self : ImageTransformer
            The transformer.

        Raises
        ------
        ValueError
            If ``transform`` is anything but ``"default"`` or ``None``.

        Examples
        --------
        >>> import sklearn
        >>> from skdigits import ImageTransformer
        >>> transformer = ImageTransformer().set_output(transform="default")
        >>> with sklearn.config_context(transform_output="pandas"):
        ...     type(transformer.fit_transform([[0, 1, 2, 3]])).__name__
        'ndarray'
        """
        if transform is None:
            return self
        if transform != "default":
            raise ValueError(
                f"ImageTransformer outputs 4-D images of shape (n_samples, 1, height, width), "
                f"which a DataFrame cannot hold, so set_output accepts only "
                f"transform='default' or None; got transform={transform!r}. {_FLAT_ROWS_HINT}"
            )
        # The attribute scikit-learn's own set_output uses: clone copies it, and
        # scikit-learn's tools read it.
        self._sklearn_output_config = {"transform": transform}
        return self

    def _check_array_output(self):
        """Raise a ValueError if the global configuration asks for DataFrames."""
        if getattr(self, "_sklearn_output_config", {}).get("transform") == "default":
            return
        requested = get_config()["transform_output"]
        if requested != "default":
            raise ValueError(
                f"sklearn.set_config(transform_output={requested!r}) asks for DataFrames, but "
                "ImageTransformer outputs 4-D images of shape (n_samples, 1, height, width), "
                "which a DataFrame cannot hold. Call set_output(transform='default') on the "
                "ImageTransformer to get its images as arrays while other transformers give "
                f"DataFrames. {_FLAT_ROWS_HINT}"
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
