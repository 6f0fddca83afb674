//! Fuzz target: a websocket frame decoded as Phoenix V1 and V2 (r2_core::phoenix::Frame::decode), with an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = r2_node::fuzz::frame_decode(data) {
        panic!("{violation}");
    }
});
