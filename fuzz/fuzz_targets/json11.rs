#![no_main]
//! Fuzz target `json11`: see `podid_fuzz::json11`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::json11(data));
