//! Loyalty plugin (work in progress).
