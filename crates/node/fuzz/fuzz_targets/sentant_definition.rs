//! Fuzz target: a sentant or swarm definition (SentantDef::parse, SwarmDef::parse), run through init and its public events.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = r2_node::fuzz::sentant_definition(data) {
        panic!("{violation}");
    }
});
