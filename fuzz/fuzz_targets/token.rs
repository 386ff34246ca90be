#![no_main]
//! Fuzz target `token`: see `podid_fuzz::token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::token(data));
