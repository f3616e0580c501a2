//! Every host-side `bindgen!` of the `patron:plugin` contract, in one module.
//!
//! One invocation per world; the interfaces the worlds share (`types`, `log`,
//! `clock`, `config`, `kv`) are generated once, by the `segmenter` invocation,
//! and reused by the others through `with`. Exports are called asynchronously, so that
//! a call's wall-clock limit holds even while the guest waits in a host call.

#![allow(missing_docs, unreachable_pub, clippy::all)]

/// The `segmenter` world, and the shared interfaces.
pub mod segmenter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "segmenter",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        exports: { default: async },
    });
}

/// The `stats-segmentation` export alone (since 0.1.1). Components exporting it are
/// `segmenter`s too (world `stats-segmenter`), called through both modules.
pub mod stats_segmenter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package patron:host;

            world stats-segmentation-export {
                export patron:plugin/stats-segmentation@0.1.2;
            }
        ",
        world: "patron:host/stats-segmentation-export",
        exports: { default: async },
        with: { "patron:plugin/types": crate::bindings::segmenter::patron::plugin::types },
    });
}

/// The `loyalty` world.
pub mod loyalty {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "loyalty",
        exports: { default: async },
        with: {
            "patron:plugin/types": crate::bindings::segmenter::patron::plugin::types,
            "patron:plugin/log": crate::bindings::segmenter::patron::plugin::log,
            "patron:plugin/clock": crate::bindings::segmenter::patron::plugin::clock,
            "patron:plugin/config": crate::bindings::segmenter::patron::plugin::config,
            "patron:plugin/kv": crate::bindings::segmenter::patron::plugin::kv,
        },
    });
}

/// The `recommender` world.
pub mod recommender {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "recommender",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        exports: { default: async },
        with: {
            "patron:plugin/types": crate::bindings::segmenter::patron::plugin::types,
            "patron:plugin/log": crate::bindings::segmenter::patron::plugin::log,
            "patron:plugin/clock": crate::bindings::segmenter::patron::plugin::clock,
            "patron:plugin/config": crate::bindings::segmenter::patron::plugin::config,
            "patron:plugin/kv": crate::bindings::segmenter::patron::plugin::kv,
        },
    });
}

/// The `automation` world.
pub mod automation {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "automation",
        exports: { default: async },
        with: {
            "patron:plugin/types": crate::bindings::segmenter::patron::plugin::types,
            "patron:plugin/log": crate::bindings::segmenter::patron::plugin::log,
            "patron:plugin/clock": crate::bindings::segmenter::patron::plugin::clock,
            "patron:plugin/config": crate::bindings::segmenter::patron::plugin::config,
            "patron:plugin/kv": crate::bindings::segmenter::patron::plugin::kv,
        },
    });
}

/// The `predictor` world (since 0.1.2).
pub mod predictor {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "predictor",
        exports: { default: async },
        with: {
            "patron:plugin/types": crate::bindings::segmenter::patron::plugin::types,
            "patron:plugin/log": crate::bindings::segmenter::patron::plugin::log,
            "patron:plugin/clock": crate::bindings::segmenter::patron::plugin::clock,
            "patron:plugin/config": crate::bindings::segmenter::patron::plugin::config,
            "patron:plugin/kv": crate::bindings::segmenter::patron::plugin::kv,
        },
    });
}

pub use segmenter::patron::plugin::{clock, config, kv, log, types};
