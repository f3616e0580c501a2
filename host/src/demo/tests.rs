//! Demo seed tests against both backends.
