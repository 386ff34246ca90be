#![no_main]
//! Fuzz target `jwks`: see `podid_fuzz::jwks`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::jwks(data));
