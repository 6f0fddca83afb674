//! Fuzz target: sequences of loads (raw or hostile definitions), sends, unloads, subscriptions and waits on a registry (r2_node::fuzz::registry_apply).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = r2_node::fuzz::registry_apply(data) {
        panic!("{violation}");
    }
});
