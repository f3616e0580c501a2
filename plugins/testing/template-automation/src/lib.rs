//! Builds `sdk/template/worlds/automation.rs` unchanged, so the scaffold is tested.

#[path = "../../../../sdk/template/worlds/automation.rs"]
mod template;
