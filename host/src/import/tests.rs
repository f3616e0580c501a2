//! Import tests against both backends.
