#![no_main]
//! Fuzz target `iam_policy`: see `podid_fuzz::iam_policy`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| podid_fuzz::iam_policy(data));
