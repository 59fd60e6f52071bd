#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| errbudget::fuzz_targets::settings(data));
