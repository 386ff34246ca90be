#![no_main]
//! Fuzz target `rest_json`: see `podid_fuzz::rest_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::rest_json(data));
