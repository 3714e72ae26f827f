"""The TensorFlow side of bnnbook: ``tf_keras`` layers and helpers.

Importing :mod:`bnnbook.keras.layers` loads TensorFlow and none of the JAX
side of bnnbook; the JAX side never imports anything from here. (TensorFlow
2.21 itself imports the ``jax`` package when it is installed, but no JAX
backend is started, so JAX takes no GPU memory in a Keras chapter.) Needs the ``tf``
extra: ``pip install "bnnbook[tf]"``.
"""

__all__: list[str] = []
