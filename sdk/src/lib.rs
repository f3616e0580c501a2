//! Patron SDK
