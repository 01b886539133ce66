"""Export skdigits models to ONNX, to predict with onnxruntime and without torch.

Importing this module registers skl2onnx converters for :class:`~skdigits.CNNDigitClassifier`
and :class:`~skdigits.ImageTransformer`, so that scikit-learn's own route to ONNX works on
them and on pipelines of them::

    import skl2onnx
    import skdigits.onnx  # registers the converters

    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})

The network is written as plain ONNX operators (Conv, MaxPool, MatMul, Gemm, Softmax...)
from its weights, batch norm folded into the convolutions as at inference, so the model
needs no torch to run. ``DigitNormalizer`` is image processing by rules (scikit-image,
scipy) that ONNX cannot express; normalise images before the ONNX model, or keep it in
Python.

Needs the ``onnx`` extra: ``pip install "skdigits[onnx]"``.
"""

import numpy as np

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        'skdigits.onnx needs skl2onnx, onnx and onnxruntime: pip install "skdigits[onnx]"'
    ) from error

from torch import nn

from ._classifier import CNNDigitClassifier
from ._networks import ConvBNReLU
from ._normalizer import DigitNormalizer
from ._transformer import ImageTransformer

__all__ = []


def _shape_image_transformer(operator):
    """Declare the ImageTransformer's output: float images (n, 1, height, width)."""
    transformer = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType(
        [n, transformer.n_channels_, *transformer.image_shape_]
    )


def _shape_classifier(operator):
    """Declare the classifier's outputs: labels (int64 or strings) and float probabilities.

    Any numeric input type is accepted (uint8 images included): the converter casts it.
    """
    classes = operator.raw_operator.classes_
    n = operator.inputs[0].get_first_dimension()
    labels = StringTensorType if classes.dtype.kind in "OU" else Int64TensorType
    operator.outputs[0].type = labels([n])
    operator.outputs[1].type = FloatTensorType([n, len(classes)])


def _convert_image_transformer(scope, operator, container):
    """Write the ImageTransformer as ONNX: cast, scale by the learned range, reshape."""
    transformer = operator.raw_operator
    graph = _Graph(scope, container)
    low, span = transformer.pixel_range_
    channels = transformer.n_channels_
    pixels = graph.scaled(graph.channels_first(operator.inputs[0], channels), low, span)
    graph.node(
        "Reshape",
        [pixels, graph.constant("shape", np.array([-1, channels, *transformer.image_shape_]))],
        output=operator.outputs[0].full_name,
    )


def _convert_classifier(scope, operator, container):
    """Write the fitted CNNDigitClassifier as ONNX: the network, softmax, labels."""
    clf = operator.raw_operator
    graph = _Graph(scope, container)
    network = clf.net_.module_
    channels, (height, width) = clf.n_channels_, clf.image_shape_
    pixels = graph.channels_first(operator.inputs[0], channels)
    rows = graph.node(
        "Reshape",
        [
            graph.node("Cast", [pixels], to=TensorProto.FLOAT),
            graph.constant("rows", np.array([-1, channels * height * width])),
        ],
    )
    networks = getattr(network, "networks", [network])  # an ensemble's, or the one
    low, span = networks[0].pixel_low.item(), networks[0].pixel_span.item()
    image = graph.node(
        "Reshape",
        [
            graph.scaled(rows, low, span),
            graph.constant("image", np.array([-1, channels, height, width])),
        ],
    )
    outputs = []
    for member in networks:
        x, size = image, (height, width)
        for layer in member.features:
            x, size = graph.layer(layer, x, size)
        for layer in member.head:
            x = graph.head_layer(layer, x)
        outputs.append(x)
    if len(outputs) > 1:
        # Soft voting, as DigitEnsemble: the log of the networks' mean probabilities.
        probabilities = [graph.node("Softmax", [x], axis=1) for x in outputs]
        share = graph.constant("share", np.float32(1 / len(outputs)))
        mean = graph.node("Mul", [graph.node("Sum", probabilities), share])
        outputs = [graph.node("Log", [mean])]
    logits = graph.node(
        "Div", [outputs[0], graph.constant("temperature", np.float32(clf.temperature_))]
    )
    graph.node("Softmax", [logits], output=operator.outputs[1].full_name, axis=1)
    index = graph.node("ArgMax", [logits], axis=1, keepdims=0)
    classes = clf.classes_
    table = graph.constant(
        "classes", classes.astype(str) if classes.dtype.kind in "OU" else classes.astype(np.int64)
    )
    graph.node("Gather", [table, index], output=operator.outputs[0].full_name, axis=0)


class _Graph:
    """Adds named constants and nodes to the ONNX graph skl2onnx builds."""

    def __init__(self, scope, container):
        self.scope = scope
        self.container = container

    def constant(self, name, value):
        """Add ``value`` as an initializer; return its name."""
        value = np.asarray(value)
        unique = self.scope.get_unique_variable_name(name)
        if value.dtype.kind == "U":
            kind, data = TensorProto.STRING, [s.encode() for s in value.ravel()]
        elif value.dtype.kind in "iu":
            kind, data = TensorProto.INT64, value.astype(np.int64).ravel().tolist()
        else:
            kind, data = TensorProto.FLOAT, value.astype(np.float32).ravel().tolist()
        self.container.add_initializer(unique, kind, list(value.shape), data)
        return unique

    def node(self, op_type, inputs, output=None, **attributes):
        """Add an ``op_type`` node; return the name of its output."""
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        self.container.add_node(
            op_type,
            inputs,
            [output],
            name=self.scope.get_unique_operator_name(op_type),
            **attributes,
        )
        return output

    def channels_first(self, variable, channels):
        """Return the input's name, transposed first if it holds channels-last colour images."""
        shape = variable.type.shape
        if channels > 1 and len(shape) == 4 and shape[3] == channels:
            return self.node("Transpose", [variable.full_name], perm=[0, 3, 1, 2])
        return variable.full_name

    def scaled(self, pixels, low, span):
        """Return float pixels mapped by the learned range, as the network does."""
        pixels = self.node("Cast", [pixels], to=TensorProto.FLOAT)
        shifted = self.node("Sub", [pixels, self.constant("low", np.float32(low))])
        return self.node("Div", [shifted, self.constant("span", np.float32(span))])

    def layer(self, layer, x, size):
        """Add one layer of the network's features; return its output and spatial size."""
        height, width = size
        if isinstance(layer, ConvBNReLU):
            conv, bn = layer.conv, layer.bn
            scale = (bn.weight * (bn.running_var + bn.eps).rsqrt()).detach()
            weight = (conv.weight.detach() * scale.view(-1, 1, 1, 1)).numpy()
            bias = (bn.bias - bn.running_mean * scale).detach().numpy()
            (kernel, _), (stride, _), (pad, _) = conv.kernel_size, conv.stride, conv.padding
            x = self.node(
                "Conv",
                [x, self.constant("weight", weight), self.constant("bias", bias)],
                kernel_shape=list(conv.kernel_size),
                strides=list(conv.stride),
                pads=[pad, pad, pad, pad],
            )
            x = self.node("Relu", [x])
            size = (
                (height + 2 * pad - kernel) // stride + 1,
                (width + 2 * pad - kernel) // stride + 1,
            )
            return x, size
        if isinstance(layer, nn.MaxPool2d):
            kernel = layer.kernel_size
            kernel = tuple(kernel) if isinstance(kernel, tuple) else (kernel, kernel)
            x = self.node("MaxPool", [x], kernel_shape=list(kernel), strides=list(kernel))
            return x, (height // kernel[0], width // kernel[1])
        if isinstance(layer, nn.AdaptiveAvgPool2d):
            cells = layer.output_size
            # Adaptive pooling averages bins of uneven sizes; as a matrix over the flattened
            # feature map it is exact for any sizes.
            pooling = _adaptive_pooling_matrix(size, cells)
            channels = self.node("Reshape", [x, self.constant("flat", np.array([0, 0, -1]))])
            x = self.node("MatMul", [channels, self.constant("pooling", pooling)])
            return x, cells
        if isinstance(layer, nn.Identity):
            return x, size
        raise TypeError(f"no ONNX conversion for the layer {type(layer).__name__}")

    def head_layer(self, layer, x):
        """Add one layer of the network's head; return its output."""
        if isinstance(layer, nn.Flatten):
            return self.node("Flatten", [x], axis=1)
        if isinstance(layer, nn.Linear):
            weight = self.constant("weight", layer.weight.detach().numpy())
            bias = self.constant("bias", layer.bias.detach().numpy())
            return self.node("Gemm", [x, weight, bias], transB=1)
        if isinstance(layer, nn.ReLU):
            return self.node("Relu", [x])
        if isinstance(layer, nn.Dropout):
            return x  # inference: dropout does nothing
        raise TypeError(f"no ONNX conversion for the layer {type(layer).__name__}")


def _refuse_normalizer(operator):
    """Raise: DigitNormalizer is image processing by rules that ONNX cannot express."""
    raise NotImplementedError(
        "DigitNormalizer cannot be converted to ONNX: it crops, rescales and centres each "
        "image with scikit-image and scipy. Normalise the images in Python first and convert "
        "the classifier alone (pipeline[-1]), or keep the pipeline in Python"
    )


def _refuse_converting(scope, operator, container):
    _refuse_normalizer(operator)


def _adaptive_pooling_matrix(size, cells):
    """Return the (h*w, ch*cw) matrix that averages a feature map as AdaptiveAvgPool2d does."""
    (height, width), (rows, cols) = size, cells
    matrix = np.zeros((height, width, rows, cols), dtype=np.float32)
    for i in range(rows):
        top, bottom = (i * height) // rows, -((-(i + 1) * height) // rows)
        for j in range(cols):
            left, right = (j * width) // cols, -((-(j + 1) * width) // cols)
            matrix[top:bottom, left:right, i, j] = 1.0 / ((bottom - top) * (right - left))
    return matrix.reshape(height * width, rows * cols)


update_registered_converter(
    DigitNormalizer, "SkdigitsDigitNormalizer", _refuse_normalizer, _refuse_converting
)
update_registered_converter(
    ImageTransformer,
    "SkdigitsImageTransformer",
    _shape_image_transformer,
    _convert_image_transformer,
)
update_registered_converter(
    CNNDigitClassifier,
    "SkdigitsCNNDigitClassifier",
    _shape_classifier,
    _convert_classifier,
    options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
)
