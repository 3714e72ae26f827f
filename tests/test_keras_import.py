"""bnnbook.keras: TensorFlow's start-up notices are kept off the page and standard error comes back."""

import os

import pytest

from bnnbook.keras import import_tensorflow, stderr_to_devnull


def test_stderr_is_silenced_inside_the_block_and_restored_after(capfd):
    os.write(2, b"before\n")
    with stderr_to_devnull():
        os.write(2, b"inside\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


def test_stderr_is_restored_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError, match="boom"):
        with stderr_to_devnull():
            raise RuntimeError("boom")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"


def test_import_tensorflow_returns_tensorflow_and_restores_stderr(capfd):
    pytest.importorskip("tensorflow")
    tf = import_tensorflow()
    assert tf.__name__ == "tensorflow" and tf.constant(2.0).numpy() == 2.0
    assert tf.get_logger().level == 40  # logging.ERROR
    os.write(2, b"visible\n")
    assert capfd.readouterr().err.endswith("visible\n")
