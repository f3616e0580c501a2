//! Builds `sdk/template/worlds/loyalty.rs` unchanged, so the scaffold is tested.

#[path = "../../../../sdk/template/worlds/loyalty.rs"]
mod template;
