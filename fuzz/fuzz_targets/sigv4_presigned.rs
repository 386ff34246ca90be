#![no_main]
//! Fuzz target `sigv4_presigned`: see `podid_fuzz::sigv4_presigned`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::sigv4_presigned(data));
