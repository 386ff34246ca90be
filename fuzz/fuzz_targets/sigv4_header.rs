#![no_main]
//! Fuzz target `sigv4_header`: see `podid_fuzz::sigv4_header`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::sigv4_header(data));
