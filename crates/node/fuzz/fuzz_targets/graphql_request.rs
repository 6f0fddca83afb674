//! Fuzz target: a POST /reality2 request (content type, query string, body) parsed as the node does, GraphQL document included.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = r2_node::fuzz::graphql_request(data) {
        panic!("{violation}");
    }
});
