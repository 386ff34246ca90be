#![no_main]
//! Fuzz target `agent_request`: see `podid_fuzz::agent_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::agent_request(data));
