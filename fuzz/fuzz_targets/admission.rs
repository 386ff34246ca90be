#![no_main]
//! Fuzz target `admission`: see `podid_fuzz::admission`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::admission(data));
