//! Builds `sdk/template/worlds/recommender.rs` unchanged, so the scaffold is tested.

#[path = "../../../../sdk/template/worlds/recommender.rs"]
mod template;
