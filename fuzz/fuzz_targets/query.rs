#![no_main]
//! Fuzz target `query`: see `podid_fuzz::query`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::query(data));
