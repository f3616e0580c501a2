//! Rules segmenter (work in progress).
